import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { connect } from "../../../src/db/connect.ts";
import type { AuditEvent } from "../../../src/frame/audit-sink.ts";
import { appendAudit, postgresAuditSink, queryAudit } from "../../../src/frame/store/audit.ts";
import { verifyAudit } from "../../../src/frame/store/audit-verify.ts";
import { withEntity } from "../../../src/frame/store/with-entity.ts";
import { tempDir } from "../../helpers/tmp.ts";
import { waitFor } from "../../helpers/wait.ts";
import { type DataFixture, dataFixture } from "./fixture.ts";

let fx: DataFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

const event = (over: Partial<AuditEvent> = {}): AuditEvent => ({
  at: new Date(),
  who: "tid/oid",
  entity: "axe",
  tool: "get_record",
  outcome: "ok",
  durationMs: 3.4,
  argsDigest: "ab".repeat(32),
  ...over,
});

describe("audit log", () => {
  test("rows chain in order per entity; refused requests without an entity go to meta", async () => {
    fx = await dataFixture();
    const sink = postgresAuditSink(fx.app);
    await Promise.all(Array.from({ length: 12 }, (_, i) => sink.record(event({ tool: `t${i}` }))));
    await sink.record(event({ entity: "labs" }));
    await sink.record(
      event({
        entity: undefined,
        tool: undefined,
        who: "anonymous",
        outcome: "refused",
        status: 401,
        reason: "token_missing",
      }),
    );
    await sink.record(event({ entity: "elsewhere", outcome: "denied", status: 403, reason: "foreign_domain" }));
    const reports = await verifyAudit(fx.db.sql);
    expect(reports.map((r) => [r.log, r.rows, r.broken])).toEqual([
      ["meta", 4, undefined], // the two entities' creation, then the two refusals
      ["axe", 12, undefined],
      ["labs", 1, undefined],
    ]);
    const rows = await withEntity(fx.app, "axe", (tx) => queryAudit(tx, { limit: 5 }));
    expect(rows.map((r) => r.seq)).toEqual([12, 11, 10, 9, 8]);
    expect(rows[0]!.durationMs).toBe(3);
  });

  test("a row Postgres refuses (U+0000) fails alone: the rest of its batch and the other entities' rows are written", async () => {
    fx = await dataFixture();
    const sink = postgresAuditSink(fx.app);
    const events = [
      ...Array.from({ length: 5 }, (_, i) => event({ requestId: `axe-${i}` })),
      event({ requestId: "poisoned", who: "x\u0000y" }),
      ...Array.from({ length: 5 }, (_, i) => event({ entity: "labs", requestId: `labs-${i}` })),
    ];
    const outcomes = await Promise.allSettled(events.map((e) => sink.record(e))); // one burst: one batch
    expect(outcomes.map((o) => o.status)).toEqual(
      events.map((e) => (e.requestId === "poisoned" ? "rejected" : "fulfilled")),
    );
    const written = await fx.db.sql`
      select request_id from entity_axe.audit_log union all select request_id from entity_labs.audit_log order by 1`;
    expect(written.map((r) => r.request_id)).toEqual(
      [...events.map((e) => e.requestId).filter((id) => id !== "poisoned")].sort(),
    );
    expect((await verifyAudit(fx.db.sql)).map((r) => r.broken)).toEqual([undefined, undefined, undefined]);
  });

  test("a batch whose connection is lost in flight (a killed backend, a restart) is written again, once", async () => {
    fx = await dataFixture(["axe"]);
    const pipe = connect({ ...fx.db.target, user: fx.appRole, password: fx.appPassword }, { max: 1 });
    try {
      const sink = postgresAuditSink(fx.app, pipe);
      // The chain's lock, held: each batch waits in the trigger, in flight, until its backend is killed.
      const holder = await fx.db.sql.reserve();
      await holder`select pg_advisory_lock(hashtext('entity_axe.audit_log'))`;
      const killed: number[] = [];
      const kill = async () => {
        const pid = await waitFor(
          "a batch waiting for the chain's lock",
          async () =>
            (
              await fx!.db.sql`select pid from pg_stat_activity
                               where usename = ${fx!.appRole} and wait_event_type = 'Lock' and pid <> all(${killed})`
            )[0]?.pid as number | undefined,
          { timeoutMs: 30_000, intervalMs: 20 },
        );
        killed.push(pid);
        await fx!.db.sql`select pg_terminate_backend(${pid})`;
      };
      const first = sink.record(event({ requestId: "read-0" })); // a batch of one, in flight
      const rest = Array.from({ length: 30 }, (_, i) => sink.record(event({ requestId: `read-${i + 1}` }))); // the next batch
      const settled = Promise.allSettled([first, ...rest]);
      await kill();
      await kill(); // what waits now is the sink looking whether that batch committed: lost as well
      await holder`select pg_advisory_unlock(hashtext('entity_axe.audit_log'))`;
      holder.release();
      const outcomes = await settled;
      expect(
        outcomes.filter((o) => o.status === "rejected").map((o) => String((o as PromiseRejectedResult).reason)),
      ).toEqual([]);
      const written = await fx.db.sql`select request_id, count(*)::int as n from entity_axe.audit_log group by 1`;
      expect(written.length).toBe(31); // every read served has its row
      expect(written.every((r) => r.n === 1)).toBe(true); // and only one
      expect((await verifyAudit(fx.db.sql, { entity: "axe" }))[0]!.broken).toBeUndefined();
    } finally {
      await pipe.end({ timeout: 5 });
    }
  });

  test("a batch that commits after its connection is lost (the answer never came back) is not written twice", async () => {
    fx = await dataFixture(["axe"]);
    // A socket between the pipe and Postgres that can swallow Postgres's answers and then drop the pipe's
    // side only: the backend keeps running what it was sent, as it does when a client's network goes.
    const dir = tempDir("axe-pgproxy");
    const upstream = join(fx.db.target.host, `.s.PGSQL.${fx.db.target.port}`);
    type Link = { server?: Bun.Socket<unknown>; early: Buffer[]; swallow: boolean };
    const clients = new Set<Bun.Socket<Link>>();
    const proxy = Bun.listen<Link>({
      unix: join(dir, ".s.PGSQL.5432"),
      socket: {
        open(client) {
          client.data = { early: [], swallow: false };
          clients.add(client);
          void Bun.connect({
            unix: upstream,
            socket: {
              open(server) {
                client.data.server = server;
                for (const chunk of client.data.early) server.write(chunk);
              },
              data(_server, chunk) {
                if (!client.data.swallow) client.write(chunk);
              },
              close() {
                client.end();
              },
            },
          });
        },
        data(client, chunk) {
          if (client.data.server) client.data.server.write(chunk);
          else client.data.early.push(Buffer.from(chunk));
        },
        close(client) {
          clients.delete(client);
          if (!client.data.swallow) client.data.server?.end();
        },
      },
    });
    const pipe = connect(
      { ...fx.db.target, host: dir, port: 5432, user: fx.appRole, password: fx.appPassword },
      { max: 1 },
    );
    try {
      const sink = postgresAuditSink(fx.app, pipe);
      await sink.record(event({ requestId: "before" })); // the pipe is connected through the socket
      const holder = await fx.db.sql.reserve();
      await holder`select pg_advisory_lock(hashtext('entity_axe.audit_log'))`;
      for (const client of clients) client.data.swallow = true; // the pipe's connection from now on
      const recorded = sink.record(event({ requestId: "in-doubt" }));
      recorded.catch(() => {});
      const waiting = (n: number) => async () =>
        (
          await fx!.db.sql`select count(*)::int as n from pg_stat_activity
                           where usename = ${fx!.appRole} and wait_event_type = 'Lock'`
        )[0]!.n >= n || undefined;
      await waitFor("the batch waiting for the chain's lock", waiting(1));
      for (const client of clients) if (client.data.swallow) client.end(); // the pipe loses its connection; the backend does not
      await waitFor("the sink looking whether the batch committed (behind it, for the lock)", waiting(2));
      await holder`select pg_advisory_unlock(hashtext('entity_axe.audit_log'))`; // now it commits
      holder.release();
      await recorded;
      const rows = await fx.db.sql`select request_id from entity_axe.audit_log order by seq`;
      expect(rows.map((r) => r.request_id)).toEqual(["before", "in-doubt"]);
    } finally {
      await pipe.end({ timeout: 0 }); // its lost connection would hold a graceful end for the whole timeout
      proxy.stop(true);
    }
  });

  test("the app's role cannot change or remove audit rows, not even under the entity's role", async () => {
    fx = await dataFixture(["axe"]);
    await appendAudit(fx.app, event());
    await expect(withEntity(fx.app, "axe", (tx) => tx`update audit_log set outcome = 'error'`)).rejects.toThrow(
      /permission denied/,
    );
    await expect(withEntity(fx.app, "axe", (tx) => tx`delete from audit_log`)).rejects.toThrow(/permission denied/);
    await expect(withEntity(fx.app, "axe", (tx) => tx`truncate audit_log`)).rejects.toThrow(/permission denied/);
    await expect(fx.app`update meta.audit_log set outcome = 'error'`).rejects.toThrow(/permission denied/);
    await expect(fx.app`delete from meta.audit_log`).rejects.toThrow(/permission denied/);
    // Even the owner meets the trigger; only switching triggers off (superuser) gets past it.
    await expect(fx.db.sql`update entity_axe.audit_log set outcome = 'error'`).rejects.toThrow(/append-only/);
    await expect(fx.db.sql`delete from entity_axe.audit_log`).rejects.toThrow(/append-only/);
    const [row] = await fx.db.sql`select count(*)::int as n, min(outcome) as outcome from entity_axe.audit_log`;
    expect(row).toEqual({ n: 1, outcome: "ok" });
  });

  test("the app's role cannot forge an operator's row (entity create, token issue, an archive cut), in meta or an entity's log", async () => {
    fx = await dataFixture(["axe"]);
    const forged = (tool: string, detail: unknown = null) => ({
      at: new Date(),
      who: "cli:root",
      tool,
      outcome: "ok",
      duration_ms: 1,
      detail: detail as null,
    });
    for (const row of [
      forged("token revoke", { token: "st_0123456789ab" }),
      forged("entity create"),
      forged("anything", { archive: { through: 1, head_hash: "0".repeat(64) } }),
    ]) {
      await expect(fx.app`insert into meta.audit_log ${fx.app(row)}`).rejects.toThrow(/only the database owner/);
      await expect(withEntity(fx.app, "axe", (tx) => tx`insert into audit_log ${tx(row)}`)).rejects.toThrow(
        /only the database owner/,
      );
    }
    // What the app writes still goes in: tool calls and refusals (tallies).
    await appendAudit(
      fx.app,
      event(),
      event({
        entity: undefined,
        who: "anonymous",
        outcome: "refused",
        tool: undefined,
        detail: { tally: true, count: 3 },
      }),
    );
    // And the owner's operator rows too.
    await fx.db.sql`insert into meta.audit_log ${fx.db.sql(forged("token revoke", { token: "st_0123456789ab" }))}`;
    const reports = await verifyAudit(fx.db.sql);
    expect(reports.map((r) => [r.log, r.rows, r.broken])).toEqual([
      ["meta", 3, undefined], // entity create, the tally, the owner's row
      ["axe", 1, undefined],
    ]);
  });

  test("audit verify names the first row a superuser changed or removed", async () => {
    fx = await dataFixture(["axe"]);
    for (let i = 0; i < 5; i++) await appendAudit(fx.app, event({ tool: `t${i}` }));
    await fx.db.sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`update entity_axe.audit_log set outcome = 'denied' where seq = 3`;
    });
    const [changed] = await verifyAudit(fx.db.sql, { entity: "axe" });
    expect(changed!.broken).toEqual({ seq: 3, reason: "the row's columns do not match its hash (it was changed)" });
    expect(changed!.rows).toBe(2);
    await fx.db.sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`update entity_axe.audit_log set outcome = 'ok' where seq = 3`;
      await tx`delete from entity_axe.audit_log where seq = 2`;
    });
    const [removed] = await verifyAudit(fx.db.sql, { entity: "axe" });
    expect(removed!.broken?.seq).toBe(2);
    expect(removed!.broken?.reason).toMatch(/missing/);
  });

  test("verify computes the same hash as the database for any text: quotes, escapes, control characters, emoji", async () => {
    fx = await dataFixture(["axe"]);
    const odd = ['a"b\\c\nd\te', "\u0001\u001f\u007f", "ü€😀\u2028", "</script>'", ""];
    for (const text of odd)
      await appendAudit(
        fx.app,
        event({
          who: text,
          reason: text,
          requestId: text,
          detail: { text, nested: { list: [1, 2.5, null, true] }, "": text },
        }),
      );
    await appendAudit(fx.app, event({ who: "no detail", detail: undefined }));
    const [report] = await verifyAudit(fx.db.sql, { entity: "axe" });
    expect([report!.rows, report!.broken]).toEqual([odd.length + 1, undefined]);
  });

  test("rows chained by every version of the trigger, and the previous release's inserts, verify as one chain", async () => {
    const { freshDatabase } = await import("../../helpers/postgres.ts");
    const { migrate } = await import("../../../src/db/migrate.ts");
    const { MIGRATIONS } = await import("../../../src/db/migrations/index.ts");
    const db = await freshDatabase("migaudit");
    try {
      const oldInsert = (who: string) =>
        db.sql`insert into meta.audit_log (at, who, outcome, duration_ms) values (now(), ${who}, 'refused', 1)`;
      const detailInsert = (who: string) =>
        db.sql`insert into meta.audit_log (at, who, outcome, duration_ms, detail)
               values (now(), ${who}, 'refused', 1, '{"count": 3, "sources": ["203.0.113.9"]}')`;
      for (const version of [3, 4, 5]) {
        await migrate(
          db.sql,
          MIGRATIONS.filter((m) => m.version <= version),
        );
        await oldInsert(`the previous release, at migration ${version}`); // no detail column named
        if (version >= 4) await detailInsert(`this release, at migration ${version}`);
      }
      // A log made by the previous release's entity creation has the generic trigger: still one chain.
      await db.sql`create or replace trigger audit_chain before insert on meta.audit_log
                   for each row execute function meta.audit_chain()`;
      await oldInsert("generic trigger");
      await detailInsert("generic trigger, with detail");
      await db.sql`select meta.audit_chain_install('meta')`;
      await oldInsert("its own trigger again");
      const [report] = await verifyAudit(db.sql, { metaOnly: true });
      expect([report!.rows, report!.broken]).toEqual([8, undefined]);
    } finally {
      await db.drop();
    }
  });
});
