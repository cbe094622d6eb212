import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { basename } from "node:path";
import { readStatus } from "../../src/backup/status.ts";
import { runCli } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import {
  type BackupFixture,
  backupFixture,
  blobLocation,
  clearOfMidnight,
  flipBytes,
  resticJson,
  resticMatrix,
  useRestic,
} from "../helpers/restic.ts";
import { seedFrameLikeData } from "./fixtures.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

async function readyFixture(): Promise<BackupFixture> {
  db = await freshDatabase("bk");
  await seedFrameLikeData(db.sql, 300);
  const fx = backupFixture({ database: db.target });
  expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);
  const first = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
  expect(first.stderr).not.toContain("error:");
  expect(first.code).toBe(0);
  return fx;
}

const snapshotIds = (fx: BackupFixture) =>
  (resticJson(fx.localRepo, fx.passwordFile("local"), ["snapshots"]) as Array<{ id: string }>).map((s) => s.id);

for (const restic of resticMatrix())
  describe(`[restic ${restic.version}] a repository known to be damaged`, () => {
    useRestic(restic);

    test("is never pruned: runs add snapshots but forget nothing, status says damaged and unproven, repair brings it back", async () => {
      await clearOfMidnight(); // its counts assume one day's snapshots (the 300 s bound allows the wait)
      const fx = await readyFixture();
      const before = snapshotIds(fx);
      const goodBefore = readStatus(fx.stateDir).tiers.local!.lastSnapshot!;
      const dump = blobLocation(fx.localRepo, fx.passwordFile("local"), "db", "frame.dump");
      flipBytes(dump.pack, dump.offset + Math.floor(dump.length / 2));

      const verify = await runCli(["backup", "verify", "--config", fx.configDir]);
      expect(verify.code).toBe(7);
      expect(verify.stderr).toContain("local: restic check found damage");
      expect(readStatus(fx.stateDir).tiers.local!.damaged?.reason).toContain("restic check found damage");

      for (let round = 1; round <= 2; round++) {
        await db!.sql`insert into entity_alpha.records (collection, data) values ('late', ${db!.sql.json({ round })})`;
        const run = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
        expect(run.code).toBe(0);
        expect(run.stderr).toContain("retention paused: the local repository is marked damaged");
        expect(run.stderr).toContain("axe-appliance backup repair --tier local");
        expect(snapshotIds(fx).length).toBe(before.length + 2 * round); // nothing forgotten
      }
      for (const id of before) expect(snapshotIds(fx)).toContain(id); // the evidence stays
      expect(existsSync(dump.pack)).toBe(true);
      const local = readStatus(fx.stateDir).tiers.local!;
      expect(local.lastSnapshot).toEqual(goodBefore); // not "last good" until proven
      expect(local.unproven?.id).toMatch(/^[0-9a-f]{8}/);

      const status = await runCli(["backup", "status", "--config", fx.configDir]);
      expect(status.code).toBe(7);
      expect(status.stdout).toContain("damaged since");
      expect(status.stdout).toContain("unproven: snapshot");

      const repair = await runCli(["backup", "repair", "--tier", "local", "--config", fx.configDir]);
      expect(repair.stderr).not.toContain("error:");
      expect(repair.code).toBe(0);
      const packId = basename(dump.pack);
      expect(repair.stdout).toContain(`pack ${packId.slice(0, 8)}`);
      expect(repair.stdout).toContain("check --read-data passed");
      expect(existsSync(dump.pack)).toBe(false);
      const quarantine = readdirSync(`${fx.localRepo}.quarantine`, { recursive: true }).map(String);
      expect(quarantine.some((p) => p.endsWith(packId))).toBe(true); // moved aside, not deleted
      const repaired = readStatus(fx.stateDir).tiers.local!;
      expect(repaired.damaged).toBeUndefined();
      expect(repaired.unproven).toBeUndefined();
      expect(repaired.lastSnapshot!.time > goodBefore.time).toBe(true);

      const proven = await runCli(["backup", "verify", "--config", fx.configDir]);
      expect(proven.stderr).not.toContain("error:");
      expect(proven.code).toBe(0);
      const after = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
      expect(after.code).toBe(0);
      expect(after.stdout).toMatch(/retention: forgot \d+ snapshots/);
      expect(snapshotIds(fx).length).toBe(restic.keepsOldest ? 4 : 2); // >= 0.17 keeps the oldest pair too
      expect((await runCli(["backup", "status", "--config", fx.configDir])).code).toBe(0);
    }, 300_000);

    test("forget and prune are separate steps: when prune fails, the message names the snapshots forget removed", async () => {
      await clearOfMidnight(); // which pair retention forgets assumes one day's snapshots
      const fx = await readyFixture();
      const oldest = snapshotIds(fx);
      // restic >= 0.17 keeps the oldest pair while fewer days exist than the policy asks for: one more run to forget
      if (restic.keepsOldest)
        expect((await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir])).code).toBe(0);
      const first = restic.keepsOldest ? snapshotIds(fx).filter((id) => !oldest.includes(id)) : oldest;
      // The pack holding customers.yaml disappears; the next files snapshot still refers to it.
      const lost = blobLocation(fx.localRepo, fx.passwordFile("local"), "files", "customers.yaml");
      rmSync(lost.pack);
      const run = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
      expect(run.code).toBe(7);
      expect(run.stderr).not.toContain("nothing was forgotten");
      expect(run.stderr).toContain("retention forgot 2 snapshots");
      for (const id of first) expect(run.stderr).toContain(id.slice(0, 8));
      expect(run.stderr).toContain("prune failed");
      expect(snapshotIds(fx).some((id) => first.includes(id))).toBe(false);
      // Prune found damage: the tier is marked, and the next run forgets nothing more.
      expect(readStatus(fx.stateDir).tiers.local!.damaged?.reason).toContain("prune");
      const next = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
      expect(next.stderr).toContain("retention paused");
      expect(snapshotIds(fx).length).toBe(restic.keepsOldest ? 6 : 4);
    }, 360_000); // 60 s alone, plus at most 180 s waiting for midnight to pass
  });
