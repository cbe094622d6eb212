/**
 * The audit chain's hash, computed here exactly as the database computes it (meta.audit_hash in
 * migrations 0003 and 0004), so that `audit verify` never trusts a function that the database
 * owner could replace: sha256 of the jsonb text of [prev_hash, seq, at, who, token_kind, reason,
 * customer, entity, tool, outcome, status, duration_ms, args_digest, request_id (, detail)].
 *
 * @example
 * for (const row of await chainRows(sql, "entity_axe.audit_log", 0, 500)) if (chainHash(row) !== row.hash) ...
 */
import { createHash } from "node:crypto";
import type { Tx } from "./queryable.ts";

export const GENESIS = "0".repeat(64);

/** One audit row as the chain sees it: every hashed column as text, exactly as Postgres prints it. */
export interface ChainRow {
  /** bigint, in decimal. */
  seq: string;
  /** `at` in UTC with microseconds: 2026-01-31T09:15:02.123456Z. */
  at: string;
  who: string;
  token_kind: string | null;
  reason: string | null;
  customer: string | null;
  entity: string | null;
  tool: string | null;
  outcome: string;
  status: number | null;
  duration_ms: number;
  args_digest: string | null;
  request_id: string | null;
  /** jsonb text as Postgres prints it (keys in its order, `", "` and `": "` separators), or null. */
  detail: string | null;
  prev_hash: string;
  hash: string;
}

/** JSON text of a string as Postgres's escape_json writes it (the same escapes as JSON.stringify). */
const text = (value: string | null) => (value === null ? "null" : JSON.stringify(value));
const number = (value: number | string | null) => (value === null ? "null" : String(value));

export function chainHash(row: Omit<ChainRow, "hash">): string {
  const parts = [
    text(row.prev_hash),
    number(row.seq),
    text(row.at),
    text(row.who),
    text(row.token_kind),
    text(row.reason),
    text(row.customer),
    text(row.entity),
    text(row.tool),
    text(row.outcome),
    number(row.status),
    number(row.duration_ms),
    text(row.args_digest),
    text(row.request_id),
  ];
  if (row.detail !== null) parts.push(row.detail);
  return createHash("sha256")
    .update(`[${parts.join(", ")}]`)
    .digest("hex");
}

/**
 * Rows of one audit table with seq above `afterSeq`, in seq order, at most `limit`. Every function
 * is named in pg_catalog (and the caller's search_path does not matter), so the owner cannot slip
 * a function of their own into how the rows are read.
 */
export function chainRows(sql: Tx, table: string, afterSeq: string, limit: number) {
  return sql<ChainRow[]>`
    select l.seq::pg_catalog.text as seq,
           pg_catalog.to_char(pg_catalog.timezone('UTC', l.at), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at,
           who, token_kind, reason, customer, entity, tool, outcome, status, duration_ms, args_digest, request_id,
           detail::pg_catalog.text as detail, prev_hash, hash
    from ${sql(table)} as l where l.seq > ${afterSeq}::pg_catalog.int8 order by l.seq limit ${limit}`;
}
