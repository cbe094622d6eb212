/**
 * Where the frame database is and how to reach it: `database.url` (+ password file) in
 * production, else the embedded cluster under the data directory.
 */
import { join } from "node:path";
import type { Config } from "../config/load.ts";
import { secretPath } from "../config/load.ts";
import { parsePostgresUrl } from "../config/postgres-url.ts";
import { DatabaseError } from "../lib/errors.ts";
import { readSecretFile } from "../lib/secret-file.ts";
import { archiveSettings } from "./archiving.ts";
import { EmbeddedPostgres } from "./embedded.ts";
import { connect } from "./pool.ts";
import type { DatabaseTarget } from "./target.ts";

export { connect, type Sql } from "./pool.ts";
export type { DatabaseTarget } from "./target.ts";

/** Environment for libpq tools (pg_dump, pg_restore, psql) to reach the target. */
export function libpqEnv(target: DatabaseTarget): Record<string, string> {
  return {
    PGHOST: target.host,
    PGPORT: String(target.port),
    PGUSER: target.user,
    PGDATABASE: target.database,
    ...(target.passfile ? { PGPASSFILE: target.passfile } : {}),
  };
}

export interface OpenDatabase {
  target: DatabaseTarget;
  embedded?: EmbeddedPostgres;
}

export const FRAME_DATABASE = "frame";

/** Resolves the configured database, starting the embedded cluster (and creating `frame`) if needed. */
export async function openDatabase(config: Config): Promise<OpenDatabase> {
  const { url, password_file } = config.appliance.database;
  if (url) {
    const { host, port, user, database } = parsePostgresUrl(url)!; // appliance.yaml's schema checked it
    return {
      target: {
        host,
        port,
        user,
        database: database || FRAME_DATABASE,
        password: password_file ? readSecretFile(secretPath(config, password_file)) : undefined,
      },
    };
  }
  const embedded = await openEmbedded(config);
  await ensureDatabase(embedded.target("postgres"), FRAME_DATABASE);
  return { target: embedded.target(FRAME_DATABASE), embedded };
}

/** The embedded cluster under the data directory, with appliance.yaml's settings; started if it is down unless `start` is false. */
export function openEmbedded(config: Config, options: { start?: boolean } = {}): Promise<EmbeddedPostgres> {
  return EmbeddedPostgres.open({
    dir: join(config.paths.data, "postgres"),
    runAs: config.appliance.database.embedded_run_as,
    archive: archiveSettings(config),
    ...options,
  });
}

/** Creates the database if it does not exist (CREATE DATABASE cannot run in a transaction). */
export async function ensureDatabase(admin: DatabaseTarget, name: string): Promise<void> {
  const sql = connect(admin, { max: 1 });
  try {
    const [row] = await sql`select 1 as present from pg_database where datname = ${name}`;
    if (!row)
      await sql`create database ${sql(name)}`.catch((error) => {
        // Created meanwhile by the other color: 42P04 when it had committed, 23505 when both raced the catalog.
        if (!["42P04", "23505"].includes((error as { code?: string }).code ?? "")) throw error;
      });
  } catch (error) {
    throw asDatabaseError(error, `could not create database ${name}`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Wraps a driver error in a DatabaseError that says what we were doing. */
export function asDatabaseError(error: unknown, doing: string): DatabaseError {
  if (error instanceof DatabaseError) return error;
  const e = error as { message?: string; code?: string };
  const hint =
    e.code === "ECONNREFUSED" || e.code === "ENOENT"
      ? "is Postgres running? Check database.url in appliance.yaml, or omit it to use the embedded cluster"
      : e.code === "28P01"
        ? "the password is wrong: check database.password_file"
        : undefined;
  return new DatabaseError("DATABASE", `${doing}: ${e.message ?? String(error)}`, hint);
}
