import { describe, expect, test } from "bun:test";
import { processesWithEnv } from "./processes.ts";
import { startSshd } from "./sshd.ts";
import { waitFor } from "./wait.ts";

describe("test sshd", () => {
  test("a command runs over ssh, and a forced command replaces whatever the client asks", async () => {
    const open = await startSshd();
    try {
      const run = Bun.spawnSync(["ssh", ...open.sshOptions, `${open.user}@127.0.0.1`, "echo", "hello"], {
        stdout: "pipe",
        stderr: "pipe",
      });
      expect(run.stderr.toString()).toBe("");
      expect(run.stdout.toString()).toBe("hello\n");
    } finally {
      await open.stop();
    }
    const forced = await startSshd({ forcedCommand: "echo forced:$SSH_ORIGINAL_COMMAND" });
    try {
      const run = Bun.spawnSync(["ssh", ...forced.sshOptions, `${forced.user}@127.0.0.1`, "rm", "-rf", "/nothing"], {
        stdout: "pipe",
      });
      expect(run.stdout.toString()).toBe("forced:rm -rf /nothing\n");
    } finally {
      await forced.stop();
    }
  });

  test("stop() also ends what a client that is gone left running (a command past a client's timeout)", async () => {
    const sshd = await startSshd({ forcedCommand: "echo started; exec sleep 300" });
    const ofThisSshd = () => processesWithEnv("SSH_CONNECTION", (v) => v.endsWith(` 127.0.0.1 ${sshd.port}`));
    try {
      const client = Bun.spawn(["ssh", ...sshd.sshOptions, `${sshd.user}@127.0.0.1`], {
        stdin: "ignore",
        stdout: "pipe",
      });
      const reader = client.stdout.getReader();
      let out = "";
      while (!out.includes("started")) out += new TextDecoder().decode((await reader.read()).value);
      client.kill("SIGKILL"); // as fleet status does at its timeout
      await client.exited;
      // Still running, client gone. Asked until seen: the shell may be inside its exec of sleep,
      // when /proc shows neither its command line nor its environment.
      const left = await waitFor("the command its client left running", () =>
        ofThisSshd().find((p) => p.command.includes("sleep 300")),
      );
      expect(left.command).toContain("sleep 300");
    } finally {
      await sshd.stop();
    }
    expect(ofThisSshd()).toEqual([]);
  });
});
