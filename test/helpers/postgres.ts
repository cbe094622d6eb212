/**
 * One throwaway Postgres cluster per test run, from the same binaries the appliance uses
 * (EmbeddedPostgres), started on first use and stopped when the run ends (or is interrupted).
 * Each test asks for a fresh database of its own, so tests never share rows.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { connect, type DatabaseTarget, ensureDatabase, type Sql } from "../../src/db/connect.ts";
import { EmbeddedPostgres } from "../../src/db/embedded.ts";
import { processesNaming, stopProcesses } from "./processes.ts";
import { afterRun, tempDir } from "./tmp.ts";

let cluster: Promise<EmbeddedPostgres> | undefined;

/** The run's cluster; its socket directory ({dir}-socket) is made beside it, so both live inside one temp dir. */
export function testCluster(): Promise<EmbeddedPostgres> {
  // port 5432 names the socket file only: the cluster listens on no TCP port
  cluster ??= EmbeddedPostgres.open({
    dir: join(tempDir("axe-pg", { scope: "run" }), "cluster"),
    port: 5432,
    throwaway: true,
  }).then((pg) => {
    // an interrupted run stops it (synchronously: from an exit handler) before its directory goes
    afterRun(() => stopProcesses(processesNaming([pg.dir])));
    return pg;
  });
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
