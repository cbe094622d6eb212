import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { backupFixture, listLatest, snapshotCount } from "../helpers/restic.ts";
import { allRows, brokenChainLink, databaseUrl, SCHEMAS, seedFrameLikeData } from "./fixtures.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

describe("backup round trip", () => {
  test("data in, backup, wipe, restore: every row and every audit row back, the chain verifies", async () => {
    db = await freshDatabase("bk");
    await seedFrameLikeData(db.sql);
    const before = await allRows(db.sql);
    expect(before["entity_alpha.records"]!.length).toBe(2000);
    expect(before["entity_beta.audit_log"]!.length).toBe(500);
    const fx = backupFixture({ database: db.target });

    const init = await runCli(["backup", "init", "--config", fx.configDir]);
    expect(init.stderr).toBe("");
    expect(init.code).toBe(0);
    const run = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
    expect(run.stderr).not.toContain("error:");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/local: database snapshot [0-9a-f]{8} \(5 tables\)/);
    expect(snapshotCount(fx.localRepo, fx.passwordFile("local"))).toBe(2); // the dump and the files
    const figures = JSON.parse(readFileSync(join(fx.stateDir, "backup-figures.json"), "utf8")) as {
      dumps: Record<string, { tables: Array<{ table: string; rows: string; method: string }> }>;
    };
    const tables = Object.values(figures.dumps)[0]!.tables;
    expect(tables.map((t) => [t.table, t.rows, t.method])).toEqual([
      ["entity_alpha.audit_log", "500", "record"],
      ["entity_alpha.records", "2000", "record"],
      ["entity_alpha.settings", "50", "text"],
      ["entity_beta.audit_log", "500", "record"],
      ["entity_beta.records", "2000", "record"],
    ]);
    // Config, secrets (restic encrypts them) and state are in the files snapshot; the data dir's
    // repository and database are not.
    const files = listLatest(fx.localRepo, fx.passwordFile("local"), "files");
    for (const p of [
      "appliance.yaml",
      "customers.yaml",
      "secrets/database.password",
      "secrets/restic-local.password",
      "data/state/backup-figures.json",
    ])
      expect(files).toContain(join(fx.configDir, p));
    expect(
      files.filter((p) => p.startsWith(join(fx.dataDir, "backup")) || p.startsWith(join(fx.dataDir, "cache"))),
    ).toEqual([]);

    for (const schema of SCHEMAS) await db.sql`drop schema ${db.sql(schema)} cascade`;
    expect((await db.sql`select count(*)::int as n from pg_namespace where nspname like 'entity_%'`)[0]!.n).toBe(0);

    const restore = await runCli([
      "backup",
      "restore",
      "--snapshot",
      "latest",
      "--to-database",
      databaseUrl(db.target),
      "--config",
      fx.configDir,
    ]);
    expect(restore.stderr).toBe("");
    expect(restore.code).toBe(0);
    expect(restore.stdout).toMatch(/^restored database dump [0-9a-f]{8} from the local tier into bk_/);
    expect(await allRows(db.sql)).toEqual(before);
    expect(await brokenChainLink(db.sql)).toBeUndefined();

    // Restoring over data that is there fails as a whole (one transaction) and changes nothing.
    await db.sql`insert into entity_alpha.records (collection, data) values ('after', '{}')`;
    const again = await runCli([
      "backup",
      "restore",
      "--snapshot",
      "latest",
      "--to-database",
      databaseUrl(db.target),
      "--config",
      fx.configDir,
    ]);
    expect(again.code).toBe(7);
    expect(again.stderr).toContain("nothing was restored (one transaction)");
    expect((await db.sql`select count(*)::int as n from entity_alpha.records`)[0]!.n).toBe(2001);
    await db.sql`delete from entity_alpha.records where collection = 'after'`;

    // The chain check is not vacuous: a changed audit row is caught.
    await db.sql`update entity_beta.audit_log set who = 'mallory' where seq = 7`;
    expect(await brokenChainLink(db.sql)).toBe("entity_beta: seq 7 hash does not match its columns");
  }, 120_000);
});
