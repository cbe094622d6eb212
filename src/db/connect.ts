/**
 * Where the frame database is and how to reach it: `database.url` (+ password file) in
 * production, else the embedded cluster under the data directory.
 */
import { join } from "node:path";
import postgres from "postgres";
import type { Config } from "../config/load.ts";
import { secretPath } from "../config/load.ts";
import { parsePostgresUrl } from "../config/postgres-url.ts";
import { DatabaseError } from "../lib/errors.ts";
import { readSecretFile } from "../lib/secret-file.ts";
import { archiveSettings } from "./archiving.ts";
import { EmbeddedPostgres } from "./embedded.ts";
import { scramOnlySocket } from "./scram-only.ts";
import type { DatabaseTarget } from "./target.ts";

export type { DatabaseTarget } from "./target.ts";

export type Sql = postgres.Sql;

/**
 * Opens a pool; `max` connections, notices dropped (they are not errors). `catalogOnly` is for the
 * database owner's sessions: their search_path is pg_catalog alone, so a function or operator some
 * other role planted in schema public (every role may create there on PostgreSQL <= 14) is never
 * chosen over the system's for an unqualified call, and never runs with the owner's rights. Such a
 * session names every object of ours with its schema (meta.*, entity_*.*).
 */
export function connect(
  target: DatabaseTarget,
  options: { max?: number; onnotice?: (n: unknown) => void; catalogOnly?: boolean } = {},
): Sql {
  const where = target.host.startsWith("/")
    ? { path: join(target.host, `.s.PGSQL.${target.port}`) }
    : { host: target.host, port: target.port };
  return postgres({
    ...(options.catalogOnly ? { connection: { search_path: "pg_catalog" } } : {}),
    ...where,
    // a password goes through SCRAM only, never to whatever took the port while Postgres was down
    ...(target.password !== undefined ? { socket: () => scramOnlySocket(where) } : {}),
    user: target.user,
    password: target.password,
    database: target.database,
    max: options.max ?? 10,
    idle_timeout: 30,
    connect_timeout: 10,
    onnotice: options.onnotice ?? (() => {}),
  });
}

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
  const { url, password_file, embedded_run_as } = config.appliance.database;
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
  const embedded = await EmbeddedPostgres.open({
    dir: join(config.paths.data, "postgres"),
    runAs: embedded_run_as,
    archive: archiveSettings(config),
  });
  await ensureDatabase(embedded.target("postgres"), FRAME_DATABASE);
  return { target: embedded.target(FRAME_DATABASE), embedded };
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
