/**
 * The Postgres audit sink: one row per tool call and per refused request, in the entity's own
 * audit_log when the entity exists, else in meta.audit_log. The database chains each row to the
 * previous one (trigger meta.audit_chain) and refuses UPDATE, DELETE and TRUNCATE.
 *
 * @example
 * const sink = postgresAuditSink(appSql);
 * await sink.record({ at: new Date(), who: "dev", entity: "axe", tool: "get_record", outcome: "ok", durationMs: 4 });
 */
import postgres from "postgres";
import type { Sql } from "../../db/connect.ts";
import type { AuditEvent, AuditSink } from "../audit-sink.ts";
import { DataError } from "./errors.ts";
import { entitySchema } from "./names.ts";
import type { Tx } from "./queryable.ts";
import { lostConnection, statementInEntity, withEntity } from "./with-entity.ts";

export interface AuditRow {
  seq: number;
  at: Date;
  who: string;
  tokenKind: string | null;
  reason: string | null;
  entity: string | null;
  tool: string | null;
  outcome: string;
  status: number | null;
  durationMs: number;
  argsDigest: string | null;
  requestId: string | null;
  /** What the row summarises (the record and version a write made, a refusal tally), or null. */
  detail: Record<string, unknown> | null;
  hash: string;
}

/** An event as the columns of an audit_log row (seq, prev_hash and hash come from the chain trigger). */
export function auditColumns(event: AuditEvent) {
  return {
    at: event.at,
    who: event.who,
    token_kind: event.tokenKind ?? null,
    reason: event.reason ?? null,
    customer: event.customer ?? null,
    entity: event.entity ?? null,
    tool: event.tool ?? null,
    outcome: event.outcome,
    status: event.status ?? null,
    duration_ms: Math.max(0, Math.round(event.durationMs)),
    args_digest: event.argsDigest ?? null,
    request_id: event.requestId ?? null,
    detail: (event.detail ?? null) as postgres.JSONValue, // postgres.js sends objects as JSON
  };
}

/**
 * The audit row of one write, inserted in the write's own transaction (withEntity's `last`
 * statement, sent with COMMIT): both commit or neither does. `event` is built when the row is
 * sent, so its duration covers the work. After the commit, `committed` is true and the caller
 * reports the event to the sink marked `committed`, which counts it without writing it again.
 *
 * @example
 * const audit = new TransactionAudit(() => ({ at: new Date(), who, entity, tool, outcome: "ok", durationMs }));
 * await withEntity(sql, entity, work, (tx, record) => audit.insert(tx, { record: record.id, version: record.version }));
 */
export class TransactionAudit {
  committed = false;
  /** The event as inserted. */
  sentEvent: AuditEvent | undefined;

  constructor(private readonly event: () => AuditEvent) {}

  /** The insert into the entity's audit_log (search_path is the entity's schema). One per call. */
  insert(tx: Tx, detail?: Record<string, unknown>) {
    if (this.sentEvent) throw new Error("a write tool ran two audited transactions; one call is one transaction");
    const event = this.event();
    this.sentEvent = detail ? { ...event, detail } : event;
    return tx`insert into audit_log ${tx(auditColumns(this.sentEvent))}`;
  }
}

/** Appends events in one transaction per destination: the entity's log, or meta's for unknown entities. */
export async function appendAudit(sql: Sql, ...events: AuditEvent[]): Promise<void> {
  const failed = (await appendAuditBatch(sql, events)).find((outcome) => outcome !== undefined);
  if (failed) throw failed;
}

/**
 * One insert per destination; each event's outcome (undefined when written) in order. A batch that
 * Postgres refuses is written again row by row, so a row it cannot take (say, text with U+0000)
 * is lost alone, never with the other callers' rows of its batch or the batches of other entities.
 */
async function appendAuditBatch(sql: Sql, events: readonly AuditEvent[], pipe?: Sql): Promise<unknown[]> {
  const groups = new Map<string, number[]>();
  for (const [i, event] of events.entries())
    groups.set(event.entity ?? "", [...(groups.get(event.entity ?? "") ?? []), i]);
  const outcomes: unknown[] = events.map(() => undefined);
  for (const [entity, indexes] of groups) {
    const insert = async (rows: ReturnType<typeof auditColumns>[]) => {
      if (entity) {
        try {
          // One round trip per batch; on the pipe its building cannot throw: `auditColumns` gives every
          // row the same keys with strings, numbers, Dates, plain JSON objects or null.
          await statementInEntity(sql, entity, (tx) => tx`insert into audit_log ${tx(rows)}`, pipe);
          return;
        } catch (error) {
          if (!(error instanceof DataError && error.reason === "unknown_entity")) throw error;
        }
      }
      await sql`insert into meta.audit_log ${sql(rows)}`;
    };
    // A connection lost with the batch in flight (a restart, a killed backend, a retired pipe) leaves it
    // committed whole or not at all: look before writing it again, so each event has exactly one row.
    const insertOnce = async (rows: ReturnType<typeof auditColumns>[]) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await insert(rows);
        } catch (error) {
          if (!lostConnection(error) || attempt === LOST_CONNECTION_ATTEMPTS) throw error;
        }
        if (await lookBack(rows[0]!)) return;
      }
    };
    const lookBack = async (row: ReturnType<typeof auditColumns>) => {
      for (let attempt = 1; ; attempt++)
        try {
          return await written(sql, entity, row);
        } catch (error) {
          if (!lostConnection(error) || attempt === LOST_CONNECTION_ATTEMPTS) throw error;
        }
    };
    try {
      await insertOnce(indexes.map((i) => auditColumns(events[i]!)));
    } catch (error) {
      if (!(error instanceof postgres.PostgresError) || indexes.length === 1) {
        for (const i of indexes) outcomes[i] = error;
        continue;
      }
      for (const i of indexes) await insertOnce([auditColumns(events[i]!)]).catch((e: unknown) => (outcomes[i] = e));
    }
  }
  return outcomes;
}

/** Tries of one batch whose connection is lost in flight (each after looking whether it committed), and of each look. */
const LOST_CONNECTION_ATTEMPTS = 3;
/** How far back from the head `written` looks: rows appended since the lost batch, by every color. */
const RECENT_ROWS = 10_000;

/**
 * Whether the row (and so the whole batch it was sent in) is in its log: the log of `entity`, or
 * meta's when there is no such entity, as `insert` chose. Takes the chain's lock first, so a lost
 * batch that still runs on the server (waiting for that lock, or holding it) commits or rolls back
 * before the look. On a reserved connection, never the pipe.
 */
async function written(sql: Sql, entity: string, row: ReturnType<typeof auditColumns>): Promise<boolean> {
  const look = async (tx: Tx, table: string) => {
    await tx`select pg_advisory_xact_lock(hashtext(${table}))`; // the chain trigger's key
    const found = await tx`
      select 1 from (select at, who, tool, outcome, duration_ms, args_digest, request_id
                     from ${tx(table)} order by seq desc limit ${RECENT_ROWS}) as r
      where r.at = ${row.at} and r.who = ${row.who} and r.tool is not distinct from ${row.tool}
        and r.outcome = ${row.outcome} and r.duration_ms = ${row.duration_ms}
        and r.args_digest is not distinct from ${row.args_digest} and r.request_id is not distinct from ${row.request_id}
      limit 1`;
    return found.length > 0;
  };
  if (entity)
    try {
      return await withEntity(sql, entity, (tx) => look(tx, `${entitySchema(entity)}.audit_log`));
    } catch (error) {
      if (!(error instanceof DataError && error.reason === "unknown_entity")) throw error;
    }
  return sql.begin((tx) => look(tx, "meta.audit_log"));
}

/** Rows per audit transaction; small enough that a batch on the pipe holds up get_record calls by a few ms at most. */
const MAX_BATCH = 100;

/**
 * Group commit: one writer drains a queue, so a burst of calls costs one transaction per entity
 * instead of one per call (the chain serialises appends anyway), and audit writes never take more
 * than one pooled connection from the tools. `record` resolves once its row is committed. With
 * `pipe`, the batches go on that shared connection (isPipe in with-entity.ts).
 */
export function postgresAuditSink(sql: Sql, pipe?: Sql): AuditSink & { flush(): Promise<void> } {
  const queue: Array<{ event: AuditEvent; done: (error?: unknown) => void }> = [];
  let draining: Promise<void> | undefined;
  const drain = async () => {
    while (queue.length) {
      const batch = queue.splice(0, MAX_BATCH);
      try {
        const outcomes = await appendAuditBatch(
          sql,
          batch.map((b) => b.event),
          pipe,
        );
        for (const [i, b] of batch.entries()) b.done(outcomes[i]);
      } catch (error) {
        for (const b of batch) b.done(error);
      }
    }
    draining = undefined;
  };
  return {
    record: (event) =>
      new Promise<void>((resolve, reject) => {
        if (event.committed) return resolve(); // written with its write, in the same transaction
        queue.push({ event, done: (error) => (error ? reject(error) : resolve()) });
        draining ??= drain();
      }),
    /** Resolves when every event recorded so far is committed (or failed); call before closing the pool. */
    async flush() {
      while (draining) await draining;
    },
  };
}

export interface AuditQuery {
  tool?: string;
  outcome?: string;
  who?: string;
  since?: Date;
  /** Rows with seq below this (the cursor of the previous page). */
  beforeSeq?: number;
  limit: number;
}

/** Newest first, inside the current entity transaction (search_path is the entity's schema). */
export async function queryAudit(tx: Tx, query: AuditQuery): Promise<AuditRow[]> {
  const rows = await tx<Record<string, unknown>[]>`
    select seq, at, who, token_kind, reason, entity, tool, outcome, status, duration_ms, args_digest, request_id, detail, hash
    from audit_log
    where true
      ${query.tool ? tx`and tool = ${query.tool}` : tx``}
      ${query.outcome ? tx`and outcome = ${query.outcome}` : tx``}
      ${query.who ? tx`and who = ${query.who}` : tx``}
      ${query.since ? tx`and at >= ${query.since}` : tx``}
      ${query.beforeSeq ? tx`and seq < ${query.beforeSeq}` : tx``}
    order by seq desc
    limit ${query.limit}`;
  return rows.map((r) => ({
    seq: Number(r.seq),
    at: r.at as Date,
    who: r.who as string,
    tokenKind: r.token_kind as string | null,
    reason: r.reason as string | null,
    entity: r.entity as string | null,
    tool: r.tool as string | null,
    outcome: r.outcome as string,
    status: r.status as number | null,
    durationMs: r.duration_ms as number,
    argsDigest: r.args_digest as string | null,
    requestId: r.request_id as string | null,
    detail: (r.detail as Record<string, unknown> | null) ?? null,
    hash: r.hash as string,
  }));
}
