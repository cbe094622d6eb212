/**
 * `backup restore --to-time/--to-lsn/--latest`: a new cluster from a base backup and the archived
 * WAL (the real archive_command, run by Postgres), replayed to the target and promoted. It holds
 * exactly the records that existed at T; the ring tier alone (from a machine that has nothing but
 * the ring password) reaches the same point; a target the tier cannot reach is refused with the
 * range it reaches. One restic version: nothing here differs between them (the WAL snapshots are
 * ordinary file snapshots and restore's copies are restic copy).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { listLatest, ringOverSsh } from "../helpers/restic.ts";
import { startSshd, type TestSshd } from "../helpers/sshd.ts";
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
let sshd: TestSshd;
let ring: { repository: string; ssh_command: string };
/** The records as they were at `at`, and the moment itself. */
let atT: { at: Date; records: string[] };

describe("point-in-time restore", () => {
  beforeAll(async () => {
    sshd = await startSshd();
    ring = ringOverSsh(sshd.configFile("peer")).ring;
    app = await pitrAppliance({ ring });
    await insertRecords(app.sql, 1, 200);
    const run = await app.cli(["backup", "run", "--tier", "all"]);
    if (run.code !== 0) throw new Error(`backup run failed: ${run.stderr}`);
    // After the base backup: more records, some deleted, some changed; then the moment T; then more of each.
    await insertRecords(app.sql, 201, 400);
    await app.sql`delete from records where id between 50 and 80`;
    await app.sql`update records set body = body || ' changed' where id % 7 = 0`;
    await archiveNow(app.sql); // T's WAL spans more than one segment
    await insertRecords(app.sql, 401, 450);
    const at = await quietMoment();
    atT = { at, records: await recordSums(app.sql) };
    await insertRecords(app.sql, 451, 600);
    await app.sql`delete from records where id between 100 and 150`;
    await app.sql`update records set body = 'after T' where id % 5 = 0`;
    await archiveNow(app.sql);
    await shipWal(app);
  }, 300_000);

  afterAll(async () => {
    await app?.stop();
    await sshd?.stop();
  });

  test("--to-time T into a new cluster holds exactly the records that existed at T (ids and checksums)", async () => {
    const dir = join(tempDir("axe-pitr"), "restored");
    const restore = await app.cli(["backup", "restore", "--to-time", atT.at.toISOString(), "--to-cluster", dir]);
    expect(restore.stderr).toBe("");
    expect(restore.code).toBe(0);
    expect(restore.stdout).toContain(`restored the local tier to ${atT.at.toISOString()}`);
    expect(existsSync(`${dir}-wal`)).toBe(false); // the fetched WAL does not outlive the restore
    const restored = await restoredRecords(dir);
    expect(restored.length).toBe(atT.records.length);
    expect(restored).toEqual(atT.records);
    // The live cluster went on to other records: the restore did not touch it.
    expect(await recordSums(app.sql)).not.toEqual(atT.records);
  }, 180_000);

  test("the ring tier restored alone (a new machine with only the ring password) reaches the same point", async () => {
    const rescue = makeConfigDir({
      appliance: {
        backup: { ring, cold: { enabled: false }, wal: { enabled: true } },
      },
    });
    mkdirSync(join(rescue, "secrets"), { mode: 0o700 });
    copyFileSync(app.fx.passwordFile("ring"), join(rescue, "secrets", "restic-ring.password"));
    const dir = join(tempDir("axe-pitr"), "restored");
    const restore = await runCli([
      "backup",
      "restore",
      "--tier",
      "ring",
      "--to-time",
      atT.at.toISOString(),
      "--to-cluster",
      dir,
      "--config",
      rescue,
    ]);
    expect(restore.stderr).toBe("");
    expect(restore.code).toBe(0);
    expect(restore.stdout).toContain("restored the ring tier");
    expect(await restoredRecords(dir)).toEqual(atT.records);
  }, 180_000);

  test("a target outside the range the tier reaches is refused with that range, and nothing is left behind", async () => {
    const base = tempDir("axe-pitr");
    const before = await app.cli([
      "backup",
      "restore",
      "--to-time",
      "2001-01-01T00:00:00Z",
      "--to-cluster",
      join(base, "early"),
    ]);
    expect(before.code).toBe(7);
    expect(before.stderr).toMatch(
      /error: 2001-01-01T00:00:00.000Z is before the end of the oldest base backup; the local tier reaches from \S+ \(the end of its oldest base backup\) to \S+ \(its newest WAL\)/,
    );
    const future = new Date(Date.now() + 86_400_000).toISOString();
    const after = await app.cli(["backup", "restore", "--to-time", future, "--to-cluster", join(base, "late")]);
    expect(after.code).toBe(7);
    expect(after.stderr).toContain(`${future} is past the newest WAL; the local tier reaches from`);
    const lsn = await app.cli(["backup", "restore", "--to-lsn", "FF/0", "--to-cluster", join(base, "lsn")]);
    expect(lsn.code).toBe(7);
    expect(lsn.stderr).toMatch(
      /LSN FF\/0 is past the newest WAL; the local tier reaches from LSN [0-9A-F]+\/[0-9A-F]+/,
    );
    for (const name of ["early", "late", "lsn"]) expect(existsSync(join(base, name))).toBe(false);
  }, 120_000);

  test("--latest reaches the newest archived record; the WAL snapshots name their segments", async () => {
    const live = await recordSums(app.sql);
    await archiveNow(app.sql);
    const dir = join(tempDir("axe-pitr"), "restored");
    const restore = await app.cli(["backup", "restore", "--latest", "--to-cluster", dir]);
    expect(restore.stderr).toBe("");
    expect(restore.code).toBe(0);
    // Not shipped yet, but in the local tier's spool: the local tier restores it too.
    expect((await restoredRecords(dir)).filter((r) => !r.startsWith("-1:"))).toEqual(
      live.filter((r) => !r.startsWith("-1:")),
    );
    expect(listLatest(app.fx.localRepo, app.fx.passwordFile("local"), "wal").length).toBeGreaterThan(0);
  }, 180_000);
});
