/**
 * Postgres: with database.url, connect and read the migration version; with the embedded
 * cluster (which `status` must never start), trust what the live color's /healthz saw.
 */
import type { Config } from "../config/load.ts";
import { parsePostgresUrl } from "../config/postgres-url.ts";
import { connect, openDatabase } from "../db/connect.ts";
import { oneLine } from "./colors-check.ts";
import type { Check, StatusReport } from "./report.ts";

const TIMEOUT_MS = 5_000;

export async function checkDatabase(
  config: Config,
  fromLiveColor?: { reachable: boolean; migration: number },
): Promise<{ database: StatusReport["database"]; check: Check }> {
  if (config.appliance.database.url) {
    const { host, port } = parsePostgresUrl(config.appliance.database.url)!; // appliance.yaml's schema checked it
    const where = `${host}:${port}`;
    try {
      const migration = await direct(config);
      return {
        database: { reachable: true, migration, via: where },
        check: { name: "database", level: "ok", summary: `reachable at ${where}, migration ${migration}` },
      };
    } catch (error) {
      return {
        database: { reachable: false, migration: null, via: where },
        check: {
          name: "database",
          level: "fail",
          summary: `not reachable at ${where}: ${oneLine((error as Error).message)}`,
        },
      };
    }
  }
  if (!fromLiveColor)
    return {
      database: { reachable: false, migration: null, via: "embedded" },
      check: { name: "database", level: "fail", summary: "embedded cluster: unknown, no live color answered /healthz" },
    };
  const { reachable, migration } = fromLiveColor;
  return {
    database: { reachable, migration: reachable ? migration : null, via: "live color" },
    check: reachable
      ? {
          name: "database",
          level: "ok",
          summary: `embedded cluster reachable from the live color, migration ${migration}`,
        }
      : { name: "database", level: "fail", summary: "the live color cannot reach the embedded cluster" },
  };
}

async function direct(config: Config): Promise<number> {
  const { target } = await openDatabase(config);
  const sql = connect(target, { max: 1, catalogOnly: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS)),
    );
    const query = sql<
      { version: number }[]
    >`select coalesce(max(version), 0)::int as version from meta.schema_migrations`;
    const [row] = await Promise.race([query, timeout]);
    return row?.version ?? 0;
  } finally {
    clearTimeout(timer);
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}
