/**
 * While the database is down, any local account can listen on its port (127.0.0.1:3700 in
 * production). What answers there must get no password: not in clear, not as an MD5 hash, not a
 * SCRAM proof made cheap by a low round count, and it must not be let in without proving it knows
 * the password. The program on the other side is a raw TCP server that records every byte.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../../src/db/connect.ts";
import { fakePostgres, pgAuth, pgMessage } from "../helpers/fake-postgres.ts";
import { freePort } from "../helpers/ports.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";
import { WAIT_MS } from "../helpers/wait.ts";

const PASSWORD = "the-database-owners-password";

const auth = pgAuth;
const ready = pgMessage("Z", Buffer.from("I"));

const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

async function attempt(reply: Buffer) {
  const fake = fakePostgres(reply);
  stops.push(fake.stop);
  const sql = connect(
    { host: "127.0.0.1", port: fake.port, user: "owner", database: "frame", password: PASSWORD },
    { max: 1 },
  );
  const outcome = await Promise.race([
    sql`select 1 as one`.then(
      () => "answered",
      (error: Error) => error.message,
    ),
    Bun.sleep(WAIT_MS).then(() => "no outcome"), // a bound for a hang only: a loaded machine may take seconds
  ]);
  await sql.end({ timeout: 0 }).catch(() => {});
  await Bun.sleep(50); // anything postgres.js still sends after the refusal would arrive by now
  return { outcome, received: fake.received() };
}

describe("a program on the database's port", () => {
  test("that asks for the password in clear gets no password", async () => {
    const { outcome, received } = await attempt(auth(3));
    expect(received).toContain("owner"); // the startup message came
    expect(received).not.toContain(PASSWORD);
    expect(outcome).toContain("clear text");
  });

  test("that asks for an MD5 hash gets none", async () => {
    const { outcome, received } = await attempt(auth(5, Buffer.from([1, 2, 3, 4])));
    expect(received).not.toMatch(/p\0\0\0(.)md5[0-9a-f]{32}/s);
    expect(received).not.toContain("md5");
    expect(outcome).toContain("MD5");
  });

  test("that says ok at once is not served queries", async () => {
    const { outcome, received } = await attempt(Buffer.concat([auth(0), ready]));
    expect(outcome).not.toBe("answered");
    expect(received).not.toContain("select 1");
    expect(outcome).toContain("without SCRAM");
  });

  test("that runs SCRAM with one round gets no proof", async () => {
    // SASL, then (after the client's first message) a SASLContinue with i=1: the fake answers once, so send both
    const fake = Buffer.concat([
      auth(10, Buffer.from("SCRAM-SHA-256\0\0")),
      auth(11, Buffer.from("r=abcdefghijklmnopqrstuvwxyz012345,s=c2FsdA==,i=1")),
    ]);
    const { outcome, received } = await attempt(fake);
    expect(received).not.toContain("c=biws");
    expect(outcome).toContain("rounds");
  });

  test("the real database, with a SCRAM password, is reached as before", async () => {
    const db = await freshDatabase("scram");
    expect(db.target.password).toBeString();
    const sql = connect(db.target, { max: 1 });
    expect((await sql`select 1 as one`)[0]).toEqual({ one: 1 });
    await sql.end();
    await db.drop();
  });

  test("no database at all (a socket path that is gone, a closed port): the query fails, the process lives on", async () => {
    // The embedded cluster stopped under a running color: its socket file is gone. The connection
    // error came before postgres.js listened for it, and an error nobody hears ends the process.
    const gone = `/tmp/axe-no-such-dir-${process.pid}`;
    const closed = await freePort();
    const errors: unknown[] = [];
    const heard = (error: unknown) => errors.push(error);
    process.on("uncaughtException", heard);
    try {
      for (const host of [gone, "127.0.0.1"]) {
        const sql = connect({ host, port: closed, user: "owner", database: "frame", password: PASSWORD }, { max: 1 });
        const outcome = await sql`select 1 as one`.then(
          () => "answered",
          (error: Error) => `refused: ${(error as { code?: string }).code}`,
        );
        await sql.end({ timeout: 0 });
        expect(outcome).toBe(host === gone ? "refused: ENOENT" : "refused: ECONNREFUSED");
      }
      await Bun.sleep(100); // an error emitted on a later tick would have arrived by now
    } finally {
      process.off("uncaughtException", heard);
    }
    expect(errors).toEqual([]);
  });

  test("a pool whose database went away answers again when it is back", async () => {
    // The embedded cluster stopped under a color that kept being asked (health checks, tool calls):
    // each connect failed at once, while postgres.js's first write to it waited for the next tick.
    // postgres.js 3.4.9 then kept that write's timer and never flushed on that connection again:
    // every later connect timed out (CONNECT_TIMEOUT), and a pool of such connections was dead.
    const db = await freshDatabase("gone");
    const dir = tempDir("axe-gone");
    const sql = connect({ ...db.target, host: dir }, { max: 1 }); // one connection: the one that failed
    const ask = () =>
      Promise.race([
        sql`select 1 as one`.then(
          (rows) => rows[0]!.one as number,
          (error: { code?: string }) => error.code ?? "error",
        ),
        Bun.sleep(WAIT_MS).then(() => "no answer"),
      ]);
    try {
      expect(await ask()).toBe("ENOENT"); // nothing listens there yet
      expect(await ask()).toBe("ENOENT");
      symlinkSync(join(db.target.host, `.s.PGSQL.${db.target.port}`), join(dir, `.s.PGSQL.${db.target.port}`));
      expect(await ask()).toBe(1); // the database is back
    } finally {
      await sql.end({ timeout: 0 });
      await db.drop();
    }
  });
});
