import { describe, expect, test } from "bun:test";
import { startSshd } from "./sshd.ts";

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
});
