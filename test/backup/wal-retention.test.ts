/**
 * Retention with WAL archiving: the keep policy applies to dumps, files and base backups, never to
 * the WAL snapshots one by one (keeping "the last 2" of them would leave a gap after the oldest
 * kept base backup); WAL older than a tier's oldest kept base backup is forgotten with it, and
 * leaves the spool even while the cold SSD that lacks it is away.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { resticJson } from "../helpers/restic.ts";
import { tempDir } from "../helpers/tmp.ts";
import {
  archiveNow,
  insertRecords,
  type PitrAppliance,
  pitrAppliance,
  quietMoment,
  recordSums,
  restoredRecords,
  shipWal,
} from "./pitr-helpers.ts";

let app: PitrAppliance;

interface Snap {
  id: string;
  time: string;
  tags?: string[];
}
const snapshots = (tag: string) =>
  (resticJson(app.fx.localRepo, app.fx.passwordFile("local"), ["snapshots", "--tag", tag]) as Snap[]).sort((a, b) =>
    a.time.localeCompare(b.time),
  );

async function shipSegment(from: number): Promise<void> {
  await insertRecords(app.sql, from, from + 49);
  await archiveNow(app.sql);
  await shipWal(app);
}

async function backupRun(): Promise<string> {
  const run = await app.cli(["backup", "run"]);
  if (run.code !== 0) throw new Error(`backup run failed: ${run.stderr}`);
  return run.stdout;
}

describe("retention with WAL archiving", () => {
  let atT: { at: Date; records: string[] };
  let firstRun: string;
  let walBefore: Snap[];

  beforeAll(async () => {
    // The cold SSD is enabled and away the whole time: every segment waits in the spool for it.
    app = await pitrAppliance({
      local: { keep: { last: 2, daily: 0, weekly: 0, monthly: 0 } },
      cold: { enabled: true, volume: tempDir("axe-cold-away") },
    });
    await shipSegment(1); // WAL from before any base backup
    walBefore = snapshots("wal");
    firstRun = await backupRun();
    await shipSegment(100); // carries the first base backup's end
    await shipSegment(200);
    atT = { at: await quietMoment(), records: await recordSums(app.sql) };
    await shipSegment(300);
  }, 300_000);

  afterAll(async () => {
    await app?.stop();
  });

  test("the policy keeps every WAL snapshot after the oldest kept base backup; older WAL goes", async () => {
    // The first run's base backup needs nothing from before it: that WAL went with the run's retention.
    expect(walBefore.length).toBe(1);
    expect(firstRun).toContain(`retention: forgot 1 snapshot (${walBefore[0]!.id.slice(0, 8)}), pruned`);
    const before = snapshots("wal");
    expect(before.length).toBe(3);
    const run = await backupRun();
    expect(run).toContain("retention: nothing to forget");
    const bases = snapshots("base");
    expect(bases.length).toBe(2);
    // More WAL snapshots than the policy's "last 2", all of them since the oldest base backup.
    const kept = snapshots("wal");
    expect(kept.map((s) => s.id)).toEqual(before.map((s) => s.id));
    expect(kept.every((s) => s.time >= bases[0]!.time)).toBe(true);

    const dir = join(tempDir("axe-walret"), "restored");
    const restore = await app.cli(["backup", "restore", "--to-time", atT.at.toISOString(), "--to-cluster", dir]);
    expect(restore.stderr).toBe("");
    expect(restore.code).toBe(0);
    expect(await restoredRecords(dir)).toEqual(atT.records);
  }, 180_000);

  test("when the oldest base backup goes, the WAL before the next one goes with it, and T is out of range", async () => {
    await shipSegment(400); // the second base backup's end
    await backupRun();
    const bases = snapshots("base");
    expect(bases.length).toBe(2);
    const wal = snapshots("wal");
    expect(wal.length).toBe(1);
    expect(wal[0]!.time >= bases[0]!.time).toBe(true);
    const late = await app.cli([
      "backup",
      "restore",
      "--to-time",
      atT.at.toISOString(),
      "--to-cluster",
      join(tempDir("axe-walret"), "late"),
    ]);
    expect(late.code).toBe(7);
    expect(late.stderr).toContain(`${atT.at.toISOString()} is before the end of the oldest base backup`);
  }, 180_000);

  test("segments the cold SSD still lacks leave the spool once no base backup local keeps needs them", async () => {
    const spool = join(app.fx.dataDir, "wal-spool");
    const segments = () => readdirSync(spool).filter((n) => /^[0-9A-F]{24}$/.test(n));
    const oldestBase = Date.parse(snapshots("base")[0]!.time);
    const pushed = (name: string) => statSync(join(spool, name)).mtimeMs;
    const before = segments().map((name) => ({ name, needed: pushed(name) >= oldestBase }));
    expect(before.some((s) => !s.needed)).toBe(true); // waiting for the cold SSD
    expect(before.some((s) => s.needed)).toBe(true);
    await shipSegment(500);
    const after = segments();
    expect(after.every((n) => pushed(n) >= oldestBase)).toBe(true);
    expect(after).toEqual(expect.arrayContaining(before.filter((s) => s.needed).map((s) => s.name)));
  }, 120_000);
});
