/**
 * `backup restore --to-dir DIR` runs restic as root, and restic restores into whatever DIR is: a
 * link it follows, a directory of another account's, a directory others may read. A database
 * snapshot comes back as frame.dump, mode 0644: the whole database for any account that can reach
 * it. The postgres account stands in for any other account of the machine (it may write in /tmp).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, lstatSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { asPostgres, asRoot, postgresAccount } from "../helpers/accounts.ts";
import { runCli } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { type BackupFixture, backupFixture, resticJson } from "../helpers/restic.ts";
import { tempDir } from "../helpers/tmp.ts";
import { seedFrameLikeData } from "./fixtures.ts";

describe.skipIf(!asRoot || !postgresAccount)("backup restore --to-dir: only into a directory of root's alone", () => {
  let db: TestDatabase;
  let fx: BackupFixture;
  let dumpId: string;
  let sticky: string;

  beforeAll(async () => {
    db = await freshDatabase("bk");
    await seedFrameLikeData(db.sql, 20);
    fx = backupFixture({ database: db.target });
    expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);
    const run = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
    expect(run.code).toBe(0);
    const snapshots = resticJson(fx.localRepo, fx.passwordFile("local"), ["snapshots", "--tag", "db"]) as {
      id: string;
    }[];
    dumpId = snapshots[0]!.id;
    expect(dumpId).toMatch(/^[0-9a-f]{64}$/);
    sticky = join(tempDir("axe-restore-links"), "tmp"); // like /tmp: root's, 1777
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
  }, 120_000);

  afterAll(async () => {
    await db?.drop();
  });

  const restore = (dir: string) =>
    runCli(["backup", "restore", "--snapshot", dumpId, "--to-dir", dir, "--config", fx.configDir]);

  test("into a new DIR: it is made root's, 0700, and holds the dump", async () => {
    const dir = join(sticky, "fresh");
    const done = await restore(dir);
    expect(done.stderr).toBe("");
    expect(done.code).toBe(0);
    const stat = lstatSync(dir);
    expect({ uid: stat.uid, mode: (stat.mode & 0o777).toString(8) }).toEqual({ uid: 0, mode: "700" });
    expect(readdirSync(dir)).toEqual(["frame.dump"]);
  });

  test("a DIR another account planted as a link to its own directory is refused; nothing lands there", async () => {
    asPostgres('mkdir -m 777 "$1/mine" && ln -s "$1/mine" "$1/linked"', sticky);
    const refused = await restore(join(sticky, "linked"));
    expect(readdirSync(join(sticky, "mine"))).toEqual([]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`${join(sticky, "linked")} is a symbolic link`);
  });

  test("a DIR that is another account's directory is refused; nothing lands there", async () => {
    asPostgres('mkdir -m 777 "$1/theirs"', sticky);
    const refused = await restore(join(sticky, "theirs"));
    expect(readdirSync(join(sticky, "theirs"))).toEqual([]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(join(sticky, "theirs"));
  });

  test("a DIR of root's that others may enter is refused: the dump would be theirs to read", async () => {
    const open = join(sticky, "open");
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    const refused = await restore(open);
    expect(readdirSync(open)).toEqual([]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("chmod 700");
  });
});
