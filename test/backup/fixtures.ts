/** Test data for backup tests: entity-like schemas, many rows, and a hash-chained audit table. */
import { createHash } from "node:crypto";
import type { DatabaseTarget, Sql } from "../../src/db/connect.ts";

export const SCHEMAS = ["entity_alpha", "entity_beta"] as const;
const GENESIS = "0".repeat(64);

/** Two schemas, each with records (jsonb, text with unicode, nulls) and an audit_log whose rows chain by sha256. */
export async function seedFrameLikeData(sql: Sql, rows = 2000): Promise<void> {
  for (const schema of SCHEMAS) {
    await sql`create schema ${sql(schema)}`;
    await sql`create table ${sql(schema)}.records (id bigserial primary key, collection text not null, data jsonb not null, note text, version int not null default 1, created_at timestamptz not null default now())`;
    await sql`create table ${sql(schema)}.audit_log (seq bigint primary key, prev_hash text not null, hash text not null, who text not null, tool text not null, at timestamptz not null)`;
    await sql`
      insert into ${sql(schema)}.records (collection, data, note)
      select 'c' || (i % 7), jsonb_build_object('n', i, 'name', 'Zoë ' || i || ' ✓', 'tags', jsonb_build_array(i % 3, 'x')),
             case when i % 5 = 0 then null else repeat('ä', i % 40) end
      from generate_series(1, ${rows}) i`;
    let prev = GENESIS;
    const audit: Array<{ seq: number; prev_hash: string; hash: string; who: string; tool: string; at: Date }> = [];
    for (let seq = 1; seq <= Math.ceil(rows / 4); seq++) {
      const row = {
        seq,
        prev_hash: prev,
        who: `user${seq % 11}@${schema}`,
        tool: seq % 2 ? "record_create" : "record_update",
        at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)),
      };
      const hash = chainHash(row);
      audit.push({ ...row, hash });
      prev = hash;
    }
    for (let i = 0; i < audit.length; i += 500)
      await sql`insert into ${sql(schema)}.audit_log ${sql(audit.slice(i, i + 500))}`;
  }
  // json and point have no hash function, so this table's figures fall back to hashing row text.
  await sql`create table entity_alpha.settings (k text primary key, v json, at point)`;
  await sql`insert into entity_alpha.settings select 'k' || i, json_build_object('i', i), point(i, -i) from generate_series(1, 50) i`;
}

export function chainHash(row: { seq: number; prev_hash: string; who: string; tool: string; at: Date }): string {
  return createHash("sha256")
    .update(`${row.prev_hash}|${row.seq}|${row.who}|${row.tool}|${row.at.toISOString()}`)
    .digest("hex");
}

/** Every row of every seeded table as JSON text, sorted: equal before and after means every record came back. */
export async function allRows(sql: Sql): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const schema of SCHEMAS) {
    for (const table of ["records", "audit_log"]) {
      const rows = await sql<
        { row: string }[]
      >`select to_jsonb(t)::text as row from ${sql(schema)}.${sql(table)} t order by 1`;
      out[`${schema}.${table}`] = rows.map((r) => r.row);
    }
  }
  return out;
}

/** Walks each audit_log in seq order; returns the first broken link, or undefined when the chains hold. */
export async function brokenChainLink(sql: Sql): Promise<string | undefined> {
  for (const schema of SCHEMAS) {
    const rows = await sql<
      { seq: string; prev_hash: string; hash: string; who: string; tool: string; at: Date }[]
    >`select * from ${sql(schema)}.audit_log order by seq`;
    let prev = GENESIS;
    for (const [i, row] of rows.entries()) {
      if (Number(row.seq) !== i + 1) return `${schema}: seq ${i + 1} missing`;
      if (row.prev_hash !== prev) return `${schema}: seq ${row.seq} prev_hash breaks the chain`;
      if (chainHash({ ...row, seq: Number(row.seq) }) !== row.hash)
        return `${schema}: seq ${row.seq} hash does not match its columns`;
      prev = row.hash;
    }
    if (rows.length === 0) return `${schema}: empty audit_log`;
  }
  return undefined;
}

export function databaseUrl(target: DatabaseTarget, database = target.database): string {
  return `postgres://${target.user}@${encodeURIComponent(target.host)}:${target.port}/${database}`;
}
