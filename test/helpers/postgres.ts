/**
 * One throwaway Postgres cluster per test run, from the same binaries the appliance uses
 * (EmbeddedPostgres), started on first use and stopped when the run ends. Each test asks for a
 * fresh database of its own, so tests never share rows.
 */
import { randomBytes } from "node:crypto";
import { connect, type DatabaseTarget, ensureDatabase, type Sql } from "../../src/db/connect.ts";
import { EmbeddedPostgres } from "../../src/db/embedded.ts";
import { tempDir } from "./tmp.ts";

let cluster: Promise<EmbeddedPostgres> | undefined;

export function testCluster(): Promise<EmbeddedPostgres> {
  cluster ??= EmbeddedPostgres.open({ dir: tempDir("axe-pg"), port: 5432, throwaway: true });
  return cluster;
}

export interface TestDatabase {
  target: DatabaseTarget;
  /** A pool for the test's own checks; closed by `drop`. */
  sql: Sql;
  /** The cluster's superuser target on the `postgres` database. */
  admin: DatabaseTarget;
  drop(): Promise<void>;
}

/** A new empty database in the test cluster. */
export async function freshDatabase(prefix = "t"): Promise<TestDatabase> {
  const pg = await testCluster();
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  const admin = pg.target("postgres");
  await ensureDatabase(admin, name);
  const target = pg.target(name);
  const sql = connect(target, { max: 4 });
  return {
    target,
    sql,
    admin,
    async drop() {
      await sql.end({ timeout: 5 });
      const root = connect(admin, { max: 1 });
      await root`drop database if exists ${root(name)} with (force)`;
      await root.end({ timeout: 5 });
    },
  };
}

export async function stopTestCluster(): Promise<void> {
  if (!cluster) return;
  const pg = await cluster.catch(() => undefined);
  cluster = undefined;
  await pg?.stop();
}
