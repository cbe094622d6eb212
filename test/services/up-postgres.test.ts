/**
 * `up` checks the embedded cluster every half second by reading pgdata/postmaster.pid, as root,
 * in a directory the postgres account owns. That account can plant a link or a FIFO there: a
 * link to a root file naming a live PID would make up believe Postgres runs, a FIFO would hang
 * up's supervisor on the read. Both are refused by name, and nothing is read through them.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import type { EmbeddedPostgres } from "../../src/db/embedded.ts";
import { DatabaseError } from "../../src/lib/errors.ts";
import { postgresSupervised } from "../../src/services/up.ts";
import { asPostgres, asRoot, postgresAccount } from "../helpers/accounts.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";

const account = postgresAccount;

describe.skipIf(!asRoot || !account)("up's check of the embedded cluster, as root", () => {
  const data = tempDir("axe-up-pg");
  const config = loadConfig({ dir: makeConfigDir({ appliance: { data_dir: data } }) });
  const pgdata = join(data, "postgres", "pgdata");
  const opened: { pg?: EmbeddedPostgres } = {};
  const postgres = postgresSupervised(config, opened);

  afterAll(async () => {
    await opened.pg?.stop();
  });

  test("running while the server runs, not once it stopped", async () => {
    expect(await postgres.running()).toBe(false);
    await postgres.start();
    expect(opened.pg?.startedHere).toBe(true);
    expect(await postgres.running()).toBe(true);
    await opened.pg!.stop();
    expect(await postgres.running()).toBe(false);
  }, 120_000);

  test("postmaster.pid as a link to a root file that names a live PID: refused by name, not taken for a server", async () => {
    const victim = join(tempDir("axe-up-victim"), "daemon.pid");
    writeFileSync(victim, `${process.pid}\n`, { mode: 0o644 });
    asPostgres('ln -s "$2" "$1/postmaster.pid"', pgdata, victim);
    try {
      const seen = await postgres.running().catch((error: unknown) => error);
      expect(seen).toBeInstanceOf(DatabaseError);
      expect((seen as DatabaseError).code).toBe("EMBEDDED_UNSAFE_PATH");
      expect((seen as DatabaseError).message).toContain(`${join(pgdata, "postmaster.pid")} is a symbolic link`);
    } finally {
      asPostgres('rm -f "$1/postmaster.pid"', pgdata);
    }
  }, 60_000);

  test("postmaster.pid as a FIFO: refused at once, the check does not hang on it", async () => {
    asPostgres('mkfifo "$1/postmaster.pid"', pgdata);
    try {
      const seen = await postgres.running().catch((error: unknown) => error);
      expect(seen).toBeInstanceOf(DatabaseError);
      expect((seen as DatabaseError).message).toContain(`${join(pgdata, "postmaster.pid")} is not a regular file`);
    } finally {
      asPostgres('rm -f "$1/postmaster.pid"', pgdata);
    }
  }, 60_000);
});
