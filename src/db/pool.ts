/**
 * Opening a pool on a target, with the checks every connection of ours gets. Apart from
 * connect.ts (where the database is) so the embedded cluster can ask its own sessions.
 */
import { join } from "node:path";
import postgres from "postgres";
import { scramOnlySocket } from "./scram-only.ts";
import type { DatabaseTarget } from "./target.ts";

export type Sql = postgres.Sql;

/**
 * Opens a pool; `max` connections, notices dropped (they are not errors). `catalogOnly` is for the
 * database owner's sessions: their search_path is pg_catalog alone, so a function or operator some
 * other role planted in schema public (every role may create there on PostgreSQL <= 14) is never
 * chosen over the system's for an unqualified call, and never runs with the owner's rights. Such a
 * session names every object of ours with its schema (meta.*, entity_*.*). Every session carries
 * `application_name` "axe-appliance <pid>" (`sessionName()`), so the process's own sessions can be
 * told from other processes' (the embedded cluster's stop) and an operator reading
 * pg_stat_activity sees whose each one is.
 */
export function connect(
  target: DatabaseTarget,
  options: { max?: number; onnotice?: (n: unknown) => void; catalogOnly?: boolean } = {},
): Sql {
  const where = target.host.startsWith("/")
    ? { path: join(target.host, `.s.PGSQL.${target.port}`) }
    : { host: target.host, port: target.port };
  return postgres({
    connection: { application_name: sessionName(), ...(options.catalogOnly ? { search_path: "pg_catalog" } : {}) },
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

/** The application_name of this process's sessions. */
export function sessionName(): string {
  return `axe-appliance ${process.pid}`;
}
