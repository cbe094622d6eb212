import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { readStatus } from "../../src/backup/status.ts";
import { runCli } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { backupFixture, blobLocation, flipBytes } from "../helpers/restic.ts";
import { seedFrameLikeData } from "./fixtures.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

describe("the drill proves config and secrets too", () => {
  test("verify restores the files snapshot and compares each file's sha256 with the figures taken at backup time", async () => {
    db = await freshDatabase("bk");
    await seedFrameLikeData(db.sql, 200);
    const fx = backupFixture({ database: db.target });
    expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);
    const run = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
    expect(run.code).toBe(0);

    const good = await runCli(["backup", "verify", "--config", fx.configDir]);
    expect(good.stderr).not.toContain("error:");
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/files snapshot [0-9a-f]{8} restored and proven: \d+ files match their sha256/);

    // Damage the pack that holds customers.yaml, and read a subset of the data that misses that
    // pack (restic picks packs for n/t by the first byte of their id), as a 5% check usually does.
    const hit = blobLocation(fx.localRepo, fx.passwordFile("local"), "files", "customers.yaml");
    flipBytes(hit.pack, hit.offset + Math.floor(hit.length / 2), 8);
    const firstByte = Number.parseInt(basename(hit.pack).slice(0, 2), 16);
    const appliance = join(fx.configDir, "appliance.yaml");
    writeFileSync(
      appliance,
      readFileSync(appliance, "utf8").replace(/check_subset: .*/, `check_subset: ${firstByte % 2 === 0 ? 2 : 1}/2`),
    );
    const bad = await runCli(["backup", "verify", "--config", fx.configDir]);
    expect(bad.code).toBe(7);
    expect(bad.stderr).toContain("local: check passed"); // the subset missed it; the drill did not
    expect(bad.stderr).toMatch(/files snapshot [0-9a-f]{8}: .*customers\.yaml/);
    const local = readStatus(fx.stateDir).tiers.local!;
    expect(local.lastDrill?.ok).toBe(false);
    expect(local.damaged).toBeDefined();
    const scratch = await db.sql`select count(*)::int as n from pg_database where datname like 'axe_drill_%'`;
    expect(scratch[0]!.n).toBe(0);
  }, 180_000);
});
