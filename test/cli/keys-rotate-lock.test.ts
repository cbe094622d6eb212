import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config/load.ts";
import { readLockHolder, tryAcquireLock } from "../../src/lib/lock-file.ts";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";

describe("keys rotate holds a lock (issue 12.6)", () => {
  test("a second rotation is refused while one runs, before it touches a key or the database", async () => {
    // a database nobody listens on: without the lock, rotate would fail there instead (exit 4)
    const dir = makeConfigDir({
      database: { host: "127.0.0.1", port: 1, user: "axe", database: "axe", password: "x" },
    });
    const config = loadConfig({ dir });
    const lockFile = `${config.paths.run}/keys.lock`;
    const running = tryAcquireLock(lockFile, { who: "keys rotate" });
    expect(running.acquired).toBe(true);
    try {
      const second = await runCli(["keys", "rotate", "--config", dir]);
      expect(second.stderr).toContain(`another \`keys rotate\` is running (pid ${process.pid}`);
      expect(second.code).toBe(5);
      expect(readLockHolder(lockFile)?.pid).toBe(process.pid);
    } finally {
      if (running.acquired) running.lock.release();
    }
    const alone = await runCli(["keys", "rotate", "--config", dir]);
    expect(alone.code).toBe(4); // it got past the lock to the (absent) database, and left no lock behind
    expect(readLockHolder(lockFile)).toBeUndefined();
  });
});
