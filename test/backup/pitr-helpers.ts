/**
 * Point-in-time restore tests: an appliance on its embedded cluster with WAL archiving on (the real
 * archive_command, run by Postgres as its own account), a table of records with checksums, and the
 * steps the tests repeat (close a segment and wait for the archiver, look at a restored cluster).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { connect, type OpenDatabase, openDatabase, type Sql } from "../../src/db/connect.ts";
import { EmbeddedPostgres } from "../../src/db/embedded.ts";
import { pollUntil } from "../../src/lib/poll.ts";
import { type CliResult, runCli } from "../helpers/cli.ts";
import { type BackupFixture, backupFixture } from "../helpers/restic.ts";

export interface PitrAppliance {
  fx: BackupFixture;
  db: OpenDatabase;
  sql: Sql;
  cli(args: string[]): Promise<CliResult>;
  stop(): Promise<void>;
}

/** An appliance with archiving on, its embedded cluster started, and a `records` table. */
export async function pitrAppliance(backup: Record<string, unknown> = {}): Promise<PitrAppliance> {
  const fx = backupFixture({
    backup: { cold: { enabled: false }, ...backup, wal: { enabled: true, ...(backup.wal as object) } },
  });
  const cli = (args: string[]) => runCli([...args, "--config", fx.configDir]);
  const init = await cli(["backup", "init"]);
  if (init.code !== 0) throw new Error(`backup init failed: ${init.stderr}`);
  const db = await openDatabase(loadConfig({ dir: fx.configDir }));
  const sql = connect(db.target, { max: 2 });
  await sql`create table records (id bigint primary key, body text not null)`;
  return {
    fx,
    db,
    sql,
    cli,
    async stop() {
      await sql.end({ timeout: 5 });
      await db.embedded?.stop();
    },
  };
}

/** Inserts records `from`..`to` (ids), each with a body of its own. */
export async function insertRecords(sql: Sql, from: number, to: number): Promise<void> {
  await sql`insert into records select i, 'record ' || i || ' ' || md5(random()::text) from generate_series(${from}::int, ${to}::int) i`;
}

/** Every record as id and a checksum of its body, in id order: equal means the same records. */
export async function recordSums(sql: Sql): Promise<string[]> {
  const rows = await sql<{ id: string; body: string }[]>`select id, body from records order by id`;
  return rows.map((r) => `${r.id}:${createHash("sha256").update(r.body).digest("hex").slice(0, 16)}`);
}

/** Closes the current segment (after writing to it) and waits until the archiver has pushed it. */
export async function archiveNow(sql: Sql): Promise<string> {
  await sql`insert into records values (-1, 'segment marker') on conflict (id) do update set body = excluded.body || '.'`;
  const [row] = await sql<{ name: string }[]>`select pg_walfile_name(pg_switch_wal()) as name`;
  const name = row!.name;
  const done = await pollUntil(
    async () => {
      const [a] = await sql<{ last: string | null }[]>`select last_archived_wal as last from pg_stat_archiver`;
      return a?.last && a.last >= name ? true : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 200 },
  );
  if (!done) throw new Error(`the archiver did not push ${name} in 120 s`);
  return name;
}

/** `backup wal-ship` with every tier reachable: what the archiver pushed goes to each tier, or the test stops here. */
export async function shipWal(app: PitrAppliance): Promise<void> {
  const ship = await app.cli(["backup", "wal-ship"]);
  if (ship.code !== 0) throw new Error(`wal-ship failed: ${ship.stderr}`);
}

/** The records of a restored cluster, opened the way the appliance opens an embedded cluster. */
export async function restoredRecords(dir: string, database = "frame"): Promise<string[]> {
  const pg = await EmbeddedPostgres.open({ dir, port: 5432 });
  const sql = connect(pg.target(database), { max: 1 });
  try {
    return await recordSums(sql);
  } finally {
    await sql.end({ timeout: 5 });
    await pg.stop();
  }
}

/** A time strictly between two commits: a pause on each side, so commit timestamps never tie with it. */
export async function quietMoment(): Promise<Date> {
  await Bun.sleep(1100);
  const at = new Date();
  await Bun.sleep(1100);
  return at;
}

export const restoreDir = (base: string, name: string) => join(base, name);
