import { describe, expect, setSystemTime, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pollUntil } from "../../src/lib/poll.ts";
import { tempDir } from "../helpers/tmp.ts";
import { linesOf } from "./fixtures/workers.ts";

const STOP_SIGNAL = join(import.meta.dir, "fixtures", "stop-signal.ts");

describe("poll until a deadline", () => {
  test("returns the first answer", async () => {
    let calls = 0;
    expect(await pollUntil(() => (++calls === 3 ? "ready" : undefined), { timeoutMs: 60_000, intervalMs: 1 })).toBe(
      "ready",
    );
    expect(calls).toBe(3);
  });

  test("gives up with undefined when time is up, after trying at least once", async () => {
    let calls = 0;
    expect(await pollUntil(() => void calls++, { timeoutMs: 0, intervalMs: 10 })).toBeUndefined();
    expect(calls).toBe(1);
    // Each attempt moves the clock 20 ms (setSystemTime): a test process a loaded machine leaves
    // unscheduled for 50 ms cannot make the first attempt the last.
    const T0 = Date.UTC(2026, 0, 1);
    calls = 0;
    setSystemTime(T0);
    try {
      const attempt = () => void setSystemTime(T0 + ++calls * 20);
      expect(await pollUntil(attempt, { timeoutMs: 50, intervalMs: 10 })).toBeUndefined();
    } finally {
      setSystemTime();
    }
    expect(calls).toBe(3); // at 20 and 40 ms time is left; after the one that ends at 60 ms, none
  });

  test("an attempt that throws ends the polling with its error", async () => {
    let calls = 0;
    const polling = pollUntil(
      () => {
        if (++calls === 2) throw new Error("the service died");
        return undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1 },
    );
    await expect(polling).rejects.toThrow("the service died");
    expect(calls).toBe(2);
  });

  test("a false or zero answer is an answer", async () => {
    expect(await pollUntil(() => false, { timeoutMs: 60_000, intervalMs: 1 })).toBe(false);
    expect(await pollUntil(() => 0, { timeoutMs: 60_000, intervalMs: 1 })).toBe(0);
  });
});

describe("wait for a stop signal", () => {
  test("a second and third signal while stopping do not kill the process; handlers go away after", async () => {
    const release = join(tempDir("axe-signal"), "release");
    const child = Bun.spawn([process.execPath, STOP_SIGNAL, release], {
      stdout: "pipe",
      stdin: "ignore",
      stderr: "inherit",
    });
    const worker = linesOf(child.stdout);
    expect(await worker.next()).toBe("ready");
    child.kill("SIGINT");
    expect(await worker.next()).toBe("stopping SIGINT");
    child.kill("SIGINT");
    expect(await worker.next()).toBe("again SIGINT");
    child.kill("SIGTERM");
    expect(await worker.next()).toBe("again SIGTERM");
    expect(child.exitCode).toBeNull();
    writeFileSync(release, "");
    expect(await worker.next()).toBe("stopped SIGINT handlers 0");
    expect(await child.exited).toBe(0);
    expect(child.signalCode).toBeNull();
  });
});
