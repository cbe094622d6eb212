/**
 * With WAL archiving, `backup verify` also proves a point-in-time restore per tier: a restore point
 * it makes on the live database while records are being written, replayed in a scratch cluster
 * whose figures must equal the live ones there. A gap in one tier's WAL fails that tier's drill by
 * name. `backup status` shows each tier's RPO against its limit and its last proven PITR.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../../src/db/connect.ts";
import { resticJson, ringOverSsh } from "../helpers/restic.ts";
import { startSshd, type TestSshd } from "../helpers/sshd.ts";
import { archiveNow, insertRecords, type PitrAppliance, pitrAppliance, shipWal } from "./pitr-helpers.ts";

let app: PitrAppliance;
let sshd: TestSshd;

interface WalTier {
  tier: string;
  rpoSeconds?: number;
  limitSeconds: number;
  lastProvenPitr?: string;
  problems: string[];
}

async function walStatus(): Promise<{ code: number; tiers: WalTier[] }> {
  const status = await app.cli(["backup", "status", "--json"]);
  return { code: status.code, tiers: (JSON.parse(status.stdout) as { walTiers: WalTier[] }).walTiers };
}

/** Inserts a record every few milliseconds on its own connection until stopped. */
function writer() {
  const sql = connect(app.db.target, { max: 1 });
  let running = true;
  let id = 1_000_000;
  const done = (async () => {
    while (running) {
      await sql`insert into records values (${id++}, 'written during the drill')`;
      await Bun.sleep(5);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      await sql.end({ timeout: 5 });
      return id - 1_000_000;
    },
  };
}

describe("point-in-time drill and WAL status", () => {
  beforeAll(async () => {
    sshd = await startSshd();
    app = await pitrAppliance({ ring: ringOverSsh(sshd.configFile("peer")).ring });
    await insertRecords(app.sql, 1, 300);
    const run = await app.cli(["backup", "run", "--tier", "all"]);
    if (run.code !== 0) throw new Error(`backup run failed: ${run.stderr}`);
    // Two WAL snapshots after the base backup, so the gap test can take the second away.
    for (const from of [301, 401]) {
      await insertRecords(app.sql, from, from + 99);
      await archiveNow(app.sql);
      await shipWal(app);
    }
  }, 300_000);

  afterAll(async () => {
    await app?.stop();
    await sshd?.stop();
  });

  test("verify proves a point-in-time restore on every tier while records are written; status shows it", async () => {
    const busy = writer();
    const verify = await app.cli(["backup", "verify"]);
    const written = await busy.stop();
    expect(written).toBeGreaterThan(10);
    expect(verify.stderr).not.toContain("error:");
    expect(verify.code).toBe(0);
    for (const tier of ["local", "ring"])
      expect(verify.stdout).toMatch(
        new RegExp(
          `${tier}: check passed.*point-in-time restore to restore point axe-drill-[0-9a-f]+ \\(LSN [0-9A-F]+/[0-9A-F]+\\) \\(base backup [0-9a-f]{8} \\+ \\d+ WAL snapshots?\\) proven: row counts and checksums equal the live ones there in 1 table`,
        ),
      );
    const { code, tiers } = await walStatus();
    expect(code).toBe(0);
    for (const tier of ["local", "ring"]) {
      const t = tiers.find((w) => w.tier === tier)!;
      expect(t.problems).toEqual([]);
      expect(t.lastProvenPitr).toBeString();
      expect(t.rpoSeconds!).toBeLessThanOrEqual(t.limitSeconds);
    }
    // Nothing of the scratch clusters is left in the data directory.
    expect(readdirSync(app.fx.dataDir).filter((n) => n.startsWith("pitr-drill"))).toEqual([]);
  }, 300_000);

  test("a WAL snapshot missing from one tier fails that tier's drill by name; the ring still proves", async () => {
    const snapshots = resticJson(app.fx.localRepo, app.fx.passwordFile("local"), [
      "snapshots",
      "--tag",
      "wal",
    ]) as Array<{ id: string; time: string }>;
    const bases = resticJson(app.fx.localRepo, app.fx.passwordFile("local"), ["snapshots", "--tag", "base"]) as Array<{
      time: string;
    }>;
    const afterBase = snapshots
      .filter((s) => s.time >= bases.at(-1)!.time)
      .sort((a, b) => a.time.localeCompare(b.time));
    expect(afterBase.length).toBeGreaterThanOrEqual(2);
    const forget = Bun.spawnSync(["restic", "--no-cache", "forget", afterBase[1]!.id], {
      env: { ...process.env, RESTIC_REPOSITORY: app.fx.localRepo, RESTIC_PASSWORD_FILE: app.fx.passwordFile("local") },
      stderr: "pipe",
    });
    expect(forget.stderr.toString()).toBe("");
    const verify = await app.cli(["backup", "verify"]);
    expect(verify.code).toBe(8);
    expect(verify.stderr).toMatch(/local: check passed.* but the local tier's WAL ends before the target/);
    expect(verify.stdout).toMatch(/ring: check passed.*point-in-time restore to restore point .* proven/);
    const { tiers } = await walStatus();
    expect(tiers.find((t) => t.tier === "ring")!.problems).toEqual([]);
  }, 300_000);

  test("status: a ring tier behind its RPO limit is red with the reason; local stays within its own", async () => {
    await sshd.stop(); // the peer is gone: its WAL waits in the spool
    await insertRecords(app.sql, 2_000_000, 2_000_100);
    await archiveNow(app.sql);
    const ship = await app.cli(["backup", "wal-ship"]);
    expect(ship.code).toBe(8);
    // As if the peer had been away for a quarter of an hour.
    const spool = join(app.fx.dataDir, "wal-spool");
    const old = new Date(Date.now() - 15 * 60_000);
    for (const name of readdirSync(spool).filter((n) => /^[0-9A-F]{24}$/.test(n)))
      utimesSync(join(spool, name), old, old);
    const { code, tiers } = await walStatus();
    expect(code).toBe(7);
    const ring = tiers.find((t) => t.tier === "ring")!;
    expect(ring.rpoSeconds!).toBeGreaterThan(15 * 60);
    expect(ring.problems.join(" ")).toMatch(
      /WAL: RPO 1[56]\.\d min \(the oldest archived change it lacks\), over the limit of 10\.0 min: \d+ segments? wait in the spool/,
    );
    const local = tiers.find((t) => t.tier === "local")!;
    expect(local.problems).toEqual([]);
    expect(local.rpoSeconds).toBe(60);
    const text = await app.cli(["backup", "status"]);
    expect(text.code).toBe(7);
    expect(text.stdout).toMatch(/^local +1\.0 min +2\.0 min +\d+\.\d min old +20\d\d-/m);
    expect(text.stdout).toMatch(/^ring +1[56]\.\d min +10\.0 min .*\n +! WAL: RPO 1[56]\.\d min/m);
  }, 180_000);
});
