/**
 * Applies pending migrations in one transaction under an advisory lock, so blue and green (or
 * two deploys) never migrate at once: the second waits, then finds nothing left to do.
 */
import { createHash } from "node:crypto";
import { DatabaseError } from "../lib/errors.ts";
import { asDatabaseError, type Sql } from "./connect.ts";
import { MIGRATIONS, type Migration } from "./migrations/index.ts";

const LOCK_KEY = "axe-appliance:migrate";

export interface MigrationState {
  /** Highest version applied in the database (0 for none). */
  current: number;
  /** Highest version this binary knows. */
  latest: number;
  pending: Migration[];
  applied: Array<{ version: number; name: string; appliedAt: Date }>;
}

const checksum = (m: Migration) => createHash("sha256").update(m.sql).digest("hex");

export async function migrationState(sql: Sql, migrations = MIGRATIONS): Promise<MigrationState> {
  try {
    const [exists] = await sql`select to_regclass('meta.schema_migrations') is not null as present`;
    const rows = exists?.present
      ? await sql<{ version: number; name: string; applied_at: Date; checksum: string }[]>`
          select version, name, applied_at, checksum from meta.schema_migrations order by version`
      : [];
    for (const row of rows) {
      const known = migrations.find((m) => m.version === row.version);
      if (known && checksum(known) !== row.checksum)
        throw new DatabaseError(
          "MIGRATION_CHANGED",
          `migration ${row.version} (${row.name}) in the database differs from this release's copy`,
          "a shipped migration was edited; add a new migration instead",
        );
    }
    const done = new Set(rows.map((r) => r.version));
    return {
      current: rows.at(-1)?.version ?? 0,
      latest: migrations.at(-1)?.version ?? 0,
      pending: migrations.filter((m) => !done.has(m.version)),
      applied: rows.map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at })),
    };
  } catch (error) {
    throw asDatabaseError(error, "reading migration state");
  }
}

/** Applies what is pending; returns the versions applied now (empty when up to date). */
export async function migrate(sql: Sql, migrations = MIGRATIONS): Promise<number[]> {
  try {
    return await sql.begin(async (tx) => {
      // Migrations resolve names in pg_catalog alone, whatever pool runs them: nothing planted in public runs here.
      await tx`set local search_path = pg_catalog`;
      await tx`select pg_advisory_xact_lock(hashtext(${LOCK_KEY}))`;
      await tx`create schema if not exists meta`;
      await tx`create table if not exists meta.schema_migrations (
        version int primary key, name text not null, checksum text not null,
        applied_at timestamptz not null default now())`;
      const { pending } = await migrationState(tx as unknown as Sql, migrations);
      for (const migration of pending) {
        await tx.unsafe(migration.sql); // static DDL shipped in the binary, never user input
        await tx`insert into meta.schema_migrations (version, name, checksum)
                 values (${migration.version}, ${migration.name}, ${checksum(migration)})`;
      }
      return pending.map((m) => m.version);
    });
  } catch (error) {
    throw asDatabaseError(error, "applying migrations");
  }
}
