import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readLockHolder, tryAcquireLock } from "../../src/lib/lock-file.ts";
import { tempDir } from "../helpers/tmp.ts";
import { raceForStaleLock } from "./fixtures/lock-race.ts";
import { deadPid } from "./fixtures/workers.ts";

const lockPath = () => join(tempDir("axe-lock"), "run", "x.lock");
const plant = (path: string, owner: object) => writeFileSync(path, JSON.stringify(owner));

function mustAcquire(path: string, who = "me") {
  const attempt = tryAcquireLock(path, { who, detail: "test" });
  if (!attempt.acquired) throw new Error(`refused: held by pid ${attempt.holder.pid}`);
  return attempt.lock;
}

describe("lock file", () => {
  test("three processes take over one stale lock, 100 rounds: exactly one holder each round, no litter", async () => {
    const outcome = await raceForStaleLock("lib", 3, 100);
    expect(outcome).toEqual({ doubles: [], none: [], unreported: [], leftovers: [] });
  });

  test("a live holder refuses the second taker, with its pid, who, detail and age", () => {
    const path = lockPath();
    mustAcquire(path).release();
    plant(path, {
      pid: process.ppid,
      startedAt: new Date(Date.now() - 60_000).toISOString(),
      who: "alice",
      detail: "1.0",
    });
    const attempt = tryAcquireLock(path, { who: "bob" });
    expect(attempt.acquired).toBe(false);
    if (attempt.acquired) return;
    expect(attempt.holder).toMatchObject({ pid: process.ppid, who: "alice", detail: "1.0", alive: true });
    expect(attempt.holder.ageMs).toBeGreaterThanOrEqual(60_000);
  });

  test("the lock file names its owner, and release removes only our own lock", () => {
    const path = lockPath();
    const lock = mustAcquire(path, "op@laptop");
    expect(lock.takenOver).toBeUndefined();
    expect(readLockHolder(path)).toMatchObject({ pid: process.pid, who: "op@laptop", detail: "test", alive: true });
    plant(path, { pid: process.ppid, startedAt: new Date().toISOString(), who: "someone else" });
    lock.release();
    expect(readLockHolder(path)?.who).toBe("someone else");
  });

  test("a dead owner's lock is taken over and reported: who, since when", async () => {
    const path = lockPath();
    mustAcquire(path).release();
    const pid = await deadPid();
    plant(path, { pid, startedAt: "2026-01-01T00:00:00.000Z", who: "crashed@op", detail: "0.9" });
    const lock = mustAcquire(path);
    expect(lock.takenOver).toMatchObject({ pid, who: "crashed@op", detail: "0.9", alive: false });
    expect(lock.takenOver?.startedAt).toBe("2026-01-01T00:00:00.000Z");
    expect(readLockHolder(path)?.pid).toBe(process.pid);
  });

  test("the caller decides what is stale: alive but past the longest deadline", () => {
    const path = lockPath();
    mustAcquire(path).release();
    plant(path, { pid: process.ppid, startedAt: new Date(Date.now() - 7_200_000).toISOString(), who: "hung" });
    const isStale = (holder: { alive: boolean; ageMs: number }) => !holder.alive || holder.ageMs > 3_600_000;
    const attempt = tryAcquireLock(path, { who: "me", isStale });
    expect(attempt.acquired && attempt.lock.takenOver).toMatchObject({ pid: process.ppid, alive: true });
  });

  test("the formats written before this module are read: deploy's version, backup's started", () => {
    const path = lockPath();
    mustAcquire(path).release();
    plant(path, { pid: process.ppid, startedAt: "2026-02-01T00:00:00Z", who: "op", version: "1.2.3" });
    expect(readLockHolder(path)).toMatchObject({ pid: process.ppid, detail: "1.2.3", alive: true });
    plant(path, { pid: process.ppid, started: new Date().toISOString() });
    expect(readLockHolder(path)).toMatchObject({ pid: process.ppid, who: "unknown", alive: true });
  });

  test("an unreadable lock file (torn by a crash) is taken over and reported as such", () => {
    const path = lockPath();
    mustAcquire(path).release();
    writeFileSync(path, '{"pid": 12');
    expect(mustAcquire(path).takenOver).toMatchObject({ pid: 0, unreadable: true, alive: false });
  });

  test("a symlink planted at the lock path is replaced, its target untouched", () => {
    const dir = tempDir("axe-lock");
    const victim = join(dir, "victim");
    writeFileSync(victim, "untouched");
    symlinkSync(victim, join(dir, "x.lock"));
    const lock = mustAcquire(join(dir, "x.lock"));
    expect(readFileSync(victim, "utf8")).toBe("untouched");
    lock.release();
    expect(readdirSync(dir)).toEqual(["victim"]);
  });

  test("a claimer that died mid-take-over does not block the lock for ever", async () => {
    const path = lockPath();
    mustAcquire(path).release();
    const pid = await deadPid();
    plant(path, { pid, startedAt: new Date().toISOString(), who: "crashed" });
    const generation = new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex").slice(0, 16);
    plant(`${path}.takeover-${generation}`, { pid, startedAt: new Date().toISOString(), who: "crashed claimer" });
    const lock = mustAcquire(path);
    expect(lock.takenOver?.who).toBe("crashed");
    expect(readdirSync(join(path, ".."))).toEqual(["x.lock"]);
  });

  test("a live claimer keeps others from taking over the same lock at once", async () => {
    const path = lockPath();
    mustAcquire(path).release();
    plant(path, { pid: await deadPid(), startedAt: new Date().toISOString(), who: "crashed" });
    const generation = new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex").slice(0, 16);
    const claim = `${path}.takeover-${generation}`;
    plant(claim, { pid: process.ppid, startedAt: new Date().toISOString(), who: "slow claimer" });
    const attempt = tryAcquireLock(path, { who: "me", contentionMs: 200 });
    expect(attempt.acquired).toBe(false);
    expect(existsSync(claim)).toBe(true);
    expect(readLockHolder(path)?.who).toBe("crashed");
  });
});
