/**
 * `backup wal-ship`: the spooled WAL segments go to every enabled tier as restic snapshots tagged
 * `wal`, and leave the spool only once every enabled tier has them (a cold SSD that is away keeps
 * them in the spool until it is back).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { backupFixture, resticJson } from "../helpers/restic.ts";
import { tempDir } from "../helpers/tmp.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

const segment = (n: number) => `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, "0")}`;

describe("backup wal-ship", () => {
  test("segments go to local and cold as wal snapshots and leave the spool only once every enabled tier has them", async () => {
    db = await freshDatabase("bk");
    const fx = backupFixture({ database: db.target });
    expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);
    const pgdata = tempDir("axe-pgdata");
    mkdirSync(join(pgdata, "pg_wal"));
    const pushAll = async (from: number, to: number) => {
      for (let n = from; n <= to; n++) {
        writeFileSync(join(pgdata, "pg_wal", segment(n)), randomBytes(256 * 1024));
        const push = await runCli(
          ["backup", "wal-push", `pg_wal/${segment(n)}`, segment(n), "--config", fx.configDir],
          { cwd: pgdata },
        );
        expect(push.code).toBe(0);
      }
    };
    const spool = join(fx.dataDir, "wal-spool");
    const spooled = () => readdirSync(spool).filter((f) => !f.startsWith("."));
    const walFiles = (repo: string, tier: "local" | "cold") =>
      (resticJson(repo, fx.passwordFile(tier), ["snapshots", "--tag", "wal"]) as unknown[] | null)?.length ?? 0;

    await pushAll(1, 3);
    const first = await runCli(["backup", "wal-ship", "--config", fx.configDir]);
    expect(first.stderr).not.toContain("error:");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("local: shipped 3 WAL segments");
    expect(first.stdout).toContain("cold: skipped");
    expect(walFiles(fx.localRepo, "local")).toBe(1);
    // The cold SSD is enabled but away: the segments stay in the spool.
    expect(spooled().sort()).toEqual([segment(1), segment(2), segment(3)]);

    await pushAll(4, 4);
    fx.setCold(true);
    const second = await runCli(["backup", "wal-ship", "--config", fx.configDir]);
    expect(second.stderr).not.toContain("error:");
    expect(second.code).toBe(0);
    expect(second.stdout).toContain("local: shipped 1 WAL segment");
    expect(second.stdout).toMatch(/cold: .*WAL/);
    expect(walFiles(fx.coldRepo, "cold")).toBe(2);
    // Every enabled tier has all four now: the spool is empty.
    expect(spooled()).toEqual([]);
    const nothing = await runCli(["backup", "wal-ship", "--config", fx.configDir]);
    expect(nothing.code).toBe(0);
    expect(nothing.stdout).toContain("local: no new WAL segments");
  }, 180_000);
});
