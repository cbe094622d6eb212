/**
 * With backup.wal.enabled the embedded cluster archives every segment through `backup wal-push`
 * (archive_mode, archive_command, archive_timeout), into a spool that belongs to the account
 * Postgres runs as. Running as root, that account can plant links, FIFOs and hard links in the
 * spool: wal-ship refuses each by name and never carries a file of root's into a backup.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { linkSync, lstatSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { connect, type OpenDatabase, openDatabase, type Sql } from "../../src/db/connect.ts";
import { pollUntil } from "../../src/lib/poll.ts";
import { runCli } from "../helpers/cli.ts";
import { type BackupFixture, backupFixture, listLatest } from "../helpers/restic.ts";
import { tempDir } from "../helpers/tmp.ts";

const asRoot = process.getuid?.() === 0;
const postgresId = (flag: "-u" | "-g") => {
  const run = spawnSync("id", [flag, "postgres"], { encoding: "utf8" });
  return run.status === 0 ? Number(run.stdout) : undefined;
};
const postgresUid = postgresId("-u");
/** The account the cluster runs as: postgres when we are root, else ourselves. */
const clusterUid = asRoot ? postgresUid : process.getuid?.();

let fx: BackupFixture;
let db: OpenDatabase;
let sql: Sql;
let spool: string;

/** Segment files in the spool (names only). */
const spooled = () => readdirSync(spool).filter((f) => /^[0-9A-F]{24}$/.test(f));

/** Writes a little, closes the segment, and waits (bounded) until the archiver has pushed it. */
async function archiveOneSegment(): Promise<string> {
  await sql`insert into t (v) select md5(i::text) from generate_series(1, 1000) i`;
  const [row] = await sql<{ name: string }[]>`select pg_walfile_name(pg_switch_wal()) as name`;
  const name = row!.name;
  const pushed = await pollUntil(() => (spooled().includes(name) ? name : undefined), {
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  if (!pushed) throw new Error(`segment ${name} never reached ${spool}: ${readdirSync(spool).join(", ")}`);
  return name;
}

describe.skipIf(asRoot && postgresUid === undefined)("WAL archiving from the embedded cluster", () => {
  beforeAll(async () => {
    fx = backupFixture({ backup: { wal: { enabled: true } } });
    expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);
    db = await openDatabase(loadConfig({ dir: fx.configDir }));
    sql = connect(db.target, { max: 2 });
    await sql`create table t (id bigserial primary key, v text)`;
    spool = join(fx.dataDir, "wal-spool");
  }, 120_000);

  afterAll(async () => {
    await sql?.end({ timeout: 5 });
    await db?.embedded?.stop();
  });

  test("archive_mode, archive_command (backup wal-push) and archive_timeout are set; a closed segment lands in the account's spool", async () => {
    const setting = async (name: string) =>
      (await sql<{ setting: string }[]>`select setting from pg_settings where name = ${name}`)[0]!.setting;
    expect(await setting("archive_mode")).toBe("on");
    expect(await setting("archive_command")).toContain(`backup wal-push "%p" "%f" --config ${fx.configDir}`);
    expect(await setting("archive_timeout")).toBe("60");
    const dir = lstatSync(spool);
    expect({ uid: dir.uid, mode: (dir.mode & 0o777).toString(8) }).toEqual({ uid: clusterUid!, mode: "700" });

    const name = await archiveOneSegment();
    expect(lstatSync(join(spool, name)).uid).toBe(clusterUid!);
    const [archiver] = await sql<{ failed_count: string }[]>`select failed_count from pg_stat_archiver`;
    expect(archiver!.failed_count).toBe("0");
    const status = await runCli(["backup", "status", "--config", fx.configDir]);
    expect(status.stdout).not.toContain("WAL archiving is failing");

    const ship = await runCli(["backup", "wal-ship", "--config", fx.configDir]);
    expect(ship.stderr).not.toContain("error:");
    expect(ship.stdout).toMatch(/local: shipped \d+ WAL segments?/);
    const saved = listLatest(fx.localRepo, fx.passwordFile("local"), "wal").map((p) => p.split("/").at(-1));
    expect(saved).toContain(name);
  }, 120_000);

  test.skipIf(!asRoot)(
    "links, a FIFO and a hard link planted in the spool are refused by name; root's file never reaches a snapshot",
    async () => {
      const victims = tempDir("axe-spool-victim");
      const secret = join(victims, "master.key");
      writeFileSync(secret, "root's secret\n", { mode: 0o600 });
      const asPostgres = (script: string, ...args: string[]) => {
        const run = spawnSync("/bin/sh", ["-c", script, "sh", ...args], {
          encoding: "utf8",
          uid: postgresUid!,
          gid: postgresId("-g")!,
        });
        if (run.status !== 0) throw new Error(`as postgres: ${script}: ${run.stderr}`);
      };
      const [link, fifo, hard] = ["0000000100000000000000F1", "0000000100000000000000F2", "0000000100000000000000F3"];
      asPostgres('ln -s "$2" "$1/$3" && mkfifo "$1/$4"', spool, secret, link, fifo);
      // Linux refuses the account a hard link to root's file (protected_hardlinks); macOS does not, so root makes it here.
      linkSync(secret, join(spool, hard));
      const real = await archiveOneSegment();

      const ship = await runCli(["backup", "wal-ship", "--config", fx.configDir]);
      expect(ship.code).not.toBe(0);
      expect(ship.stderr).toContain(`${join(spool, link)} is a symbolic link`);
      expect(ship.stderr).toContain(`${join(spool, fifo)} is not a regular file`);
      expect(ship.stderr).toContain(`${join(spool, hard)} has 2 hard links`);
      // The real segment still went; the planted names did not, and root's file is as it was.
      const saved = listLatest(fx.localRepo, fx.passwordFile("local"), "wal").map((p) => p.split("/").at(-1));
      expect(saved).toContain(real);
      for (const planted of [link, fifo, hard]) expect(saved).not.toContain(planted);
      expect(readFileSync(secret, "utf8")).toBe("root's secret\n");
      expect((lstatSync(secret).mode & 0o777).toString(8)).toBe("600");
      expect(lstatSync(secret).uid).toBe(0);
      asPostgres('rm -f "$1/$2" "$1/$3"', spool, link, fifo);
      spawnSync("rm", ["-f", join(spool, hard)]);
    },
    120_000,
  );
});
