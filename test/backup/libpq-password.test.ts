/**
 * Backups run libpq's tools (pg_dump, pg_basebackup, pg_restore) as root with the database's
 * password in a pgpass file, and libpq before 16 sends it in clear to any server that asks. While
 * Postgres is down another local account can hold its port: the tool must never get to ask it.
 * libpqAuth first has the server prove itself through SCRAM and holds that connection while the
 * tool runs.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { libpqAuth, toolDir } from "../../src/backup/dump.ts";
import { fakePostgres, pgAuth } from "../helpers/fake-postgres.ts";
import { freshDatabase } from "../helpers/postgres.ts";

const PASSWORD = "the-database-owners-password";
const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

async function psql(env: Record<string, string>) {
  const child = Bun.spawn([join(toolDir(), "psql"), "--no-password", "-tAc", "select 1"], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 5_000, // a program that never answers after taking the password must not hold the test
  });
  const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  return { stdout, code };
}

describe("a libpq tool's password", () => {
  test("never reaches a program on the database's port that asks for it in clear", async () => {
    const fake = fakePostgres(pgAuth(3));
    stops.push(fake.stop);
    const target = { host: "127.0.0.1", port: fake.port, user: "owner", database: "frame", password: PASSWORD };
    let refused: Error | undefined;
    try {
      const auth = await libpqAuth(target);
      try {
        await psql(auth.env);
      } finally {
        await auth.cleanup();
      }
    } catch (error) {
      refused = error as Error;
    }
    await Bun.sleep(50);
    expect(fake.received()).not.toContain(PASSWORD);
    expect(refused?.message).toContain("clear text");
  });

  test("reaches the real database, and the tool runs", async () => {
    const db = await freshDatabase("libpq");
    const auth = await libpqAuth(db.target);
    try {
      expect(await psql(auth.env)).toEqual({ stdout: "1\n", code: 0 });
    } finally {
      await auth.cleanup();
      await db.drop();
    }
  });
});
