import { describe, expect, test } from "bun:test";
import { closeSync, lstatSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describeExit, ProgramStartError, runPipeline, runProgram, startProgram } from "../../src/lib/program.ts";
import { asRoot, postgresAccount } from "../helpers/accounts.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";

/** Ignores SIGINT from its first instruction (SIG_IGN survives exec), then says so and sleeps. */
const IGNORES_SIGINT = ["sh", "-c", 'trap "" INT; echo ready; exec sleep 60'];
/** Stops by itself on SIGINT, the way restic does: its own exit code, nothing saved. */
const HANDLES_SIGINT = [
  "sh",
  "-c",
  'trap "echo saving nothing; exit 130" INT; echo ready; while :; do sleep 0.05; done',
];

/** A test of another account needs root and a second one. */
const postgres = postgresAccount;

/**
 * A deadline the program must not meet before its shell has set its trap (or said its first
 * line): a shell can take more than a second to start on a loaded machine, and a signal that
 * comes first ends it the default way, which is not what these tests are about.
 */
const SETS_ITS_TRAP_MS = 5_000;

const until = (check: () => boolean, what: string) => waitFor(what, check, { intervalMs: 50 });

describe("program with a deadline", () => {
  test("an exit code, stdout and stderr come back as they were", async () => {
    const exit = await runProgram(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(exit).toEqual({
      code: 3,
      signal: null,
      status: 3,
      timedOut: false,
      stdout: "out\n",
      stderr: "err\n",
      truncated: false,
    });
    expect(describeExit(exit)).toBe("exited 3");
  });

  test("a program ended by a signal reports the signal, not a made-up code", async () => {
    const exit = await runProgram(["sh", "-c", "kill -TERM $$"]);
    expect(exit).toMatchObject({ code: null, signal: "SIGTERM", status: 143, timedOut: false });
    expect(describeExit(exit)).toBe("killed by SIGTERM");
  });

  test("at the deadline a program that ignores SIGINT gets SIGKILL after the grace period", async () => {
    const exit = await runProgram(IGNORES_SIGINT, { deadlineMs: SETS_ITS_TRAP_MS, killAfterMs: 500 });
    expect(exit).toMatchObject({ code: null, signal: "SIGKILL", timedOut: true });
    expect(exit.stdout).toBe("ready\n");
    expect(describeExit(exit, SETS_ITS_TRAP_MS)).toBe("did not finish within 5000 ms (killed by SIGKILL)");
  });

  test("at the deadline a program that handles SIGINT stops by itself, and its own exit code is kept", async () => {
    const exit = await runProgram(HANDLES_SIGINT, { deadlineMs: SETS_ITS_TRAP_MS, killAfterMs: 30_000 });
    expect(exit).toMatchObject({ code: 130, signal: null, status: 130, timedOut: true });
    expect(exit.stdout).toContain("saving nothing");
  });

  test("a chosen deadline signal is sent instead of SIGINT", async () => {
    const exit = await runProgram(IGNORES_SIGINT, { deadlineMs: 1000, deadlineSignal: "SIGTERM" });
    expect(exit).toMatchObject({ signal: "SIGTERM", timedOut: true });
  });

  test("stop() signals now and SIGKILLs after the grace; a finished program is left alone", async () => {
    const lines: string[] = [];
    const running = startProgram(IGNORES_SIGINT, { onStdoutLine: (line) => lines.push(line) });
    await until(() => lines.includes("ready"), "ready");
    const exit = await running.stop("SIGINT", 300);
    expect(exit).toMatchObject({ signal: "SIGKILL", timedOut: false });
    expect(running.done).toBe(true);
    expect(await running.stop()).toBe(exit);
  });

  test("only the tail of a long output is kept, and it says so", async () => {
    const exit = await runProgram(["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; echo END"], { keepBytes: 1000 });
    expect(exit.stdout.length).toBe(1000);
    expect(exit.stdout.endsWith("xEND\n")).toBe(true);
    expect(exit.truncated).toBe(true);
  });

  test("stdout lines reach the caller as they come, while the program still runs; stdin can be written", async () => {
    const lines: string[] = [];
    const running = startProgram(["sh", "-c", 'echo one; read reply; echo "two $reply"'], {
      stdin: "pipe",
      onStdoutLine: (line) => lines.push(line),
    });
    await until(() => lines.length > 0, "the first line");
    expect(running.done).toBe(false);
    running.stdin!.write("go\n");
    running.stdin!.end();
    const exit = await running.exited;
    expect(lines).toEqual(["one", "two go"]);
    expect(exit.stdout).toBe("one\ntwo go\n");
  });

  test("output can go straight to a descriptor the caller owns (nothing passes through us)", async () => {
    const file = join(tempDir("axe-program"), "out");
    const fd = openSync(file, "w");
    try {
      const exit = await runProgram(["sh", "-c", "echo into-the-file"], { stdout: fd });
      expect(exit.stdout).toBe("");
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, "utf8")).toBe("into-the-file\n");
  });

  test("a grandchild that keeps the output open does not hold the result past the program's exit", async () => {
    const exit = await runProgram(["sh", "-c", "sleep 30 & echo $!"], { deadlineMs: 20_000 });
    process.kill(Number(exit.stdout.trim()), "SIGKILL");
    expect(exit).toMatchObject({ code: 0, timedOut: false });
  });

  test("a program that is not there is a start error naming it", () => {
    let error: unknown;
    try {
      startProgram(["/nonexistent/restic", "version"]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProgramStartError);
    expect((error as ProgramStartError).message).toBe("cannot run /nonexistent/restic: ENOENT");
  });

  test("runProgram reports a program that is not there as a rejection, so a .catch() on it sees the start error", async () => {
    const seen = await runProgram(["/nonexistent/ssh", "-V"]).then(
      () => "resolved",
      (error: unknown) => error,
    );
    expect(seen).toBeInstanceOf(ProgramStartError);
  });

  test.skipIf(!asRoot || !postgres)(
    "runAs starts the program as another account: its uid and gid only, none of root's groups",
    async () => {
      const dir = tempDir("axe-program-as");
      const exit = await runProgram(["sh", "-c", 'id -u; id -g; id -G; touch "$1/made"', "sh", dir], {
        runAs: postgres!,
      });
      // tempDir is 0755 root's: the account may enter it but not write in it
      expect(exit.code).not.toBe(0);
      expect(exit.stdout.split("\n").slice(0, 3)).toEqual([
        String(postgres!.uid),
        String(postgres!.gid),
        String(postgres!.gid),
      ]);
      expect(exit.stderr).toContain("Permission denied");
      const open = await runProgram(["sh", "-c", 'mkdir "$1/open" && chmod 1777 "$1/open"', "sh", dir]);
      expect(open.code).toBe(0);
      expect((await runProgram(["touch", join(dir, "open", "made")], { runAs: postgres! })).code).toBe(0);
      expect(lstatSync(join(dir, "open", "made")).uid).toBe(postgres!.uid);
    },
  );

  test.skipIf(!asRoot || !postgres)(
    "runAs without an env of the caller's: the program gets the locale, PATH and TZ, not the rest of root's environment",
    async () => {
      process.env.AXE_TEST_ROOT_SECRET = "not for the postgres account";
      try {
        const exit = await runProgram(["env"], { runAs: postgres! });
        expect(exit.code).toBe(0);
        const names = exit.stdout
          .split("\n")
          .filter(Boolean)
          .map((line) => line.slice(0, line.indexOf("=")));
        expect(names).not.toContain("AXE_TEST_ROOT_SECRET");
        expect(names).toContain("PATH");
        for (const name of names)
          expect(["PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PWD"].includes(name) || name.startsWith("LC_")).toBe(
            true,
          );
        // what the caller passes is passed as it is
        const given = await runProgram(["env"], { runAs: postgres!, env: { PATH: process.env.PATH!, PGTZ: "UTC" } });
        expect(given.stdout).toContain("PGTZ=UTC");
      } finally {
        delete process.env.AXE_TEST_ROOT_SECRET;
      }
    },
  );

  test("detached, it leads a process group of its own (without, it stays in ours)", async () => {
    const pidAndGroup = async (detached: boolean) => {
      const exit = await runProgram(["sh", "-c", 'echo "$$ $(ps -o pgid= -p "$$")"'], { detached });
      const [pid, group] = exit.stdout.trim().split(/\s+/).map(Number);
      return { pid, group };
    };
    const detached = await pidAndGroup(true);
    expect(detached.group).toBe(detached.pid);
    const attached = await pidAndGroup(false);
    expect(attached.group).not.toBe(attached.pid);
  });

  test("runAs naming our own account starts the program as we are (no privilege needed)", async () => {
    const me = { uid: process.getuid!(), gid: process.getgid!() };
    const exit = await runProgram(["sh", "-c", "id -u; id -g"], { runAs: me });
    expect(exit.stdout).toBe(`${me.uid}\n${me.gid}\n`);
  });
});

describe("two programs in a pipeline", () => {
  test("the producer's output streams whole into the consumer", async () => {
    const exit = await runPipeline(
      { argv: ["sh", "-c", "sleep 0.2; head -c 33554432 /dev/zero"] },
      { argv: ["sh", "-c", "wc -c"] },
    );
    expect(exit.producer).toMatchObject({ code: 0, timedOut: false });
    expect(exit.consumer).toMatchObject({ code: 0, stdout: expect.stringContaining("33554432") });
    expect(exit.producerStopped).toBe(false);
  });

  test("a consumer that ends early stops the producer, which is never left blocked on a full pipe", async () => {
    const exit = await runPipeline(
      { argv: ["sh", "-c", 'trap "" PIPE; while :; do echo data || sleep 0.01; done'] },
      { argv: ["sh", "-c", "head -c 5 >/dev/null; echo cannot go on >&2; exit 2"] },
    );
    expect(exit.consumer).toMatchObject({ code: 2, stderr: "cannot go on\n" });
    expect(exit.producerStopped).toBe(true);
    expect(exit.producer.signal).toBe("SIGTERM");
  });

  test("a producer stopped at its deadline ends the consumer's input: the consumer finishes with what came", async () => {
    const exit = await runPipeline(
      {
        argv: ["sh", "-c", "echo first; exec sleep 60"],
        options: { deadlineMs: SETS_ITS_TRAP_MS, deadlineSignal: "SIGTERM" },
      },
      { argv: ["cat"] },
    );
    expect(exit.producer).toMatchObject({ signal: "SIGTERM", timedOut: true });
    expect(exit.consumer).toMatchObject({ code: 0, stdout: "first\n" });
  });

  test("a consumer that cannot start stops the producer and throws the start error", async () => {
    let error: unknown;
    await runPipeline({ argv: ["sleep", "60"] }, { argv: ["/nonexistent/tar"] }).catch((e: unknown) => {
      error = e;
    });
    expect(error).toBeInstanceOf(ProgramStartError);
  });
});
