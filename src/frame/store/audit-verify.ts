/**
 * Walks an audit chain in seq order and names the first row that does not hold: a gap in seq, a
 * prev_hash that is not the previous row's hash, or a hash that does not match the row's columns.
 * Runs with the owner connection (it reads every entity's log).
 */
import type { Sql } from "../../db/connect.ts";
import { entitySchema } from "./names.ts";

export interface ChainReport {
  /** "meta" or the entity name. */
  log: string;
  table: string;
  rows: number;
  broken?: { seq: number; reason: string };
}

const GENESIS = "0".repeat(64);

export async function verifyChain(sql: Sql, log: string, schema: string): Promise<ChainReport> {
  const table = `${schema}.audit_log`;
  const report: ChainReport = { log, table, rows: 0 };
  let previous = { seq: 0, hash: GENESIS };
  await sql<{ seq: string; prev_hash: string; hash: string; expected: string }[]>`
    select seq, prev_hash, hash,
           meta.audit_hash(prev_hash, seq, at, who, token_kind, reason, customer, entity, tool, outcome,
                           status, duration_ms, args_digest, request_id) as expected
    from ${sql(table)} order by seq`.cursor(500, (rows) => {
    for (const row of rows) {
      const seq = Number(row.seq);
      const reason =
        seq !== previous.seq + 1
          ? `row ${previous.seq + 1} is missing (next row is ${seq})`
          : row.prev_hash !== previous.hash
            ? "prev_hash does not match the hash of the row before"
            : row.hash !== row.expected
              ? "the row's columns do not match its hash (it was changed)"
              : undefined;
      if (reason) {
        report.broken = { seq: reason.startsWith("row ") ? previous.seq + 1 : seq, reason };
        return sql.CLOSE;
      }
      report.rows++;
      previous = { seq, hash: row.hash };
    }
  });
  return report;
}

/** Verifies meta.audit_log and every entity's log, or one entity's only. */
export async function verifyAudit(sql: Sql, options: { entity?: string } = {}): Promise<ChainReport[]> {
  const entities = options.entity
    ? [options.entity]
    : (await sql<{ name: string }[]>`select name from meta.entities order by name`).map((r) => r.name);
  const reports = options.entity ? [] : [await verifyChain(sql, "meta", "meta")];
  for (const entity of entities) reports.push(await verifyChain(sql, entity, entitySchema(entity)));
  return reports;
}
