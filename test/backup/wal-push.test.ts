/**
 * `backup wal-push %p %f`, as Postgres' archive_command calls it (in the cluster's data directory):
 * the segment lands whole in the spool or not at all, a repeat is harmless, a different segment
 * under the same name is refused, a kill -9 halfway leaves nothing under the segment's name (and the
 * retry removes its temp file), and a
 * full spool disk fails (Postgres keeps the segment and retries) with the reason in `backup status`.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAIN, REPO, runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";

const isRoot = process.getuid?.() === 0;
const SEGMENT = "000000010000000000000003";
let mounted: string | undefined;
afterEach(() => {
  if (mounted) spawnSync("umount", [mounted]);
  mounted = undefined;
});

/** A cluster data directory with one WAL segment of `size` random bytes. */
function pgdata(size = 16 * 1024 * 1024): { dir: string; bytes: Buffer } {
  const dir = tempDir("axe-pgdata");
  mkdirSync(join(dir, "pg_wal"));
  const bytes = randomBytes(size);
  writeFileSync(join(dir, "pg_wal", SEGMENT), bytes);
  return { dir, bytes };
}

const push = (configDir: string, cwd: string, segment = SEGMENT) =>
  runCli(["backup", "wal-push", `pg_wal/${segment}`, segment, "--config", configDir], { cwd });

describe("backup wal-push", () => {
  test("a segment lands whole in the spool; a repeat is 0; another segment under the same name is refused", async () => {
    const config = makeConfigDir({ appliance: { backup: { ring: { enabled: false } } } });
    const spool = join(config, "data", "wal-spool");
    const data = pgdata();
    const first = await push(config, data.dir);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(readFileSync(join(spool, SEGMENT)).equals(data.bytes)).toBe(true);
    expect(readdirSync(spool).filter((f) => f.endsWith(".tmp"))).toEqual([]); // no temp file left
    expect(readdirSync(spool).filter((f) => !f.startsWith("."))).toEqual([SEGMENT]);
    expect((await push(config, data.dir)).code).toBe(0); // Postgres retries after a crash: harmless

    writeFileSync(join(data.dir, "pg_wal", SEGMENT), randomBytes(1024));
    const clash = await push(config, data.dir);
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toContain(`${SEGMENT} is already in the spool with other content`);
    expect(readFileSync(join(spool, SEGMENT)).equals(data.bytes)).toBe(true); // never overwritten
  }, 60_000);

  test("kill -9 halfway: nothing under the segment's name; Postgres' retry then archives it whole", async () => {
    const config = makeConfigDir({ appliance: { backup: { ring: { enabled: false } } } });
    const spool = join(config, "data", "wal-spool");
    const data = pgdata();
    // The segment comes through a FIFO that we fill halfway, so wal-push is mid-copy when it is killed.
    const slow = tempDir("axe-walsrc");
    mkdirSync(join(slow, "pg_wal"));
    const fifo = join(slow, "pg_wal", SEGMENT);
    expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
    const child = Bun.spawn(
      [process.execPath, MAIN, "backup", "wal-push", `pg_wal/${SEGMENT}`, SEGMENT, "--config", config],
      { cwd: slow, env: { ...process.env, AXE_CONFIG_DIR: "" }, stdout: "ignore", stderr: "ignore" },
    );
    // A writer that sends half the segment and then holds the FIFO open, as a slow disk would.
    const half = join(slow, "half");
    writeFileSync(half, data.bytes.subarray(0, data.bytes.length / 2));
    const writer = Bun.spawn(["sh", "-c", `cat "${half}"; exec sleep 60`], {
      stdout: Bun.file(fifo),
      stderr: "ignore",
    });
    // Wait (bounded) until wal-push has written most of that half into its temp file, then kill it.
    const copied = () =>
      existsSync(spool) ? readdirSync(spool).reduce((n, f) => n + Bun.file(join(spool, f)).size, 0) : 0;
    await waitFor("wal-push to copy a quarter of the segment", () => copied() >= data.bytes.length / 4, {
      intervalMs: 50,
    });
    child.kill("SIGKILL");
    await child.exited;
    writer.kill("SIGKILL");
    await writer.exited;
    expect(existsSync(join(spool, SEGMENT))).toBe(false);

    const left = readdirSync(spool).filter((f) => f.startsWith(`.${SEGMENT}.`) && f.endsWith(".tmp"));
    expect(left.length).toBe(1); // what the killed push wrote

    // Another segment's temp files: a day-old one is a dead push's, a fresh one may be a live push's.
    const [old, fresh] = [".000000010000000000000001.0123456789ab.tmp", ".000000010000000000000002.0123456789ab.tmp"];
    for (const name of [old, fresh]) writeFileSync(join(spool, name), "partial");
    const dayAgo = new Date(Date.now() - 25 * 3600_000);
    utimesSync(join(spool, old), dayAgo, dayAgo);
    const retry = await push(config, data.dir);
    expect(retry.code).toBe(0);
    expect(readFileSync(join(spool, SEGMENT)).equals(data.bytes)).toBe(true);
    expect(readdirSync(spool).filter((f) => f.endsWith(".tmp"))).toEqual([fresh]);
  }, 60_000);

  test.skipIf(!isRoot)(
    "a full spool disk: exit non-zero with the reason, status red; after space is freed the retry archives it",
    async () => {
      const spool = tempDir("axe-spool");
      expect(spawnSync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", spool], { encoding: "utf8" }).stderr).toBe(
        "",
      );
      mounted = spool;
      const config = makeConfigDir({
        appliance: { backup: { ring: { enabled: false }, wal: { enabled: true, spool } } },
      });
      const data = pgdata();
      const full = await push(config, data.dir);
      expect(full.code).not.toBe(0);
      expect(full.stderr).toContain("no space left on device");
      expect(existsSync(join(spool, SEGMENT))).toBe(false);
      expect(readdirSync(spool).filter((f) => !f.startsWith(".wal-push.json"))).toEqual([]); // the partial temp file is gone too
      const status = await runCli(["backup", "status", "--config", config], { cwd: REPO });
      expect(status.code).toBe(7);
      expect(status.stdout).toContain("WAL archiving is failing");
      expect(status.stdout).toContain("no space left on device");

      expect(spawnSync("mount", ["-o", "remount,size=64m", spool]).status).toBe(0);
      const retry = await push(config, data.dir);
      expect(retry.code).toBe(0);
      expect(readFileSync(join(spool, SEGMENT)).equals(data.bytes)).toBe(true);
      const after = await runCli(["backup", "status", "--config", config], { cwd: REPO });
      expect(after.stdout).not.toContain("WAL archiving is failing");
      rmSync(join(spool, SEGMENT));
      rmSync(join(spool, ".wal-push.json"), { force: true });
    },
    60_000,
  );
});
