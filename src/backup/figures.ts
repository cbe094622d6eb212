/**
 * Figures that prove a restore: per table, the row count and an order-independent checksum (the
 * sum of a 64-bit hash of each row's text). Taken at dump time inside the dump's own snapshot,
 * compared by the restore drill against the scratch database.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type postgres from "postgres";
import { z } from "zod";
import { writeFileAtomic } from "../lib/atomic-write.ts";

export const TableFigureSchema = z.object({
  table: z.string(),
  rows: z.string(),
  checksum: z.string(),
  /** record: hash_record_extended over the binary values (PG 14+, ~4x cheaper); text: a hash of the row's text. */
  method: z.enum(["record", "text"]).default("text"),
});
export type TableFigure = z.infer<typeof TableFigureSchema>;

const FiguresFileSchema = z.object({
  dumps: z.record(z.string(), z.object({ time: z.string(), tables: z.array(TableFigureSchema) })),
});

const KEEP_DUMPS = 200;

type Queryable = postgres.Sql | postgres.TransactionSql;

/** Row count and checksum of every ordinary table outside the system schemas. */
export async function tableFigures(
  sql: Queryable,
  methods?: Map<string, TableFigure["method"]>,
): Promise<TableFigure[]> {
  const tables = await sql<{ schema: string; name: string }[]>`
    select n.nspname as schema, c.relname as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')
      and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
    order by 1, 2`;
  const figures: TableFigure[] = [];
  for (const { schema, name } of tables) {
    const method = methods?.get(`${schema}.${name}`);
    figures.push(await tableFigure(sql, schema, name, method));
  }
  return figures;
}

/**
 * One table's figures. `hash_record_extended` fails for a column type without an extended hash
 * (json, xml, point...); then the row's text is hashed instead. A savepoint keeps the
 * surrounding transaction (the dump's snapshot) usable after that failure.
 */
async function tableFigure(
  sql: Queryable,
  schema: string,
  name: string,
  method?: TableFigure["method"],
): Promise<TableFigure> {
  const table = `${schema}.${name}`;
  const byText = async (q: Queryable) =>
    (
      await q<{ rows: string; checksum: string }[]>`
      select count(*)::text as rows, coalesce(sum(hashtextextended(t::text, 0)), 0)::text as checksum from ${q(schema)}.${q(name)} t`
    )[0]!;
  const byRecord = async (q: Queryable) =>
    (
      await q<{ rows: string; checksum: string }[]>`
      select count(*)::text as rows, coalesce(sum(hash_record_extended(t, 0)), 0)::text as checksum from ${q(schema)}.${q(name)} t`
    )[0]!;
  if (method === "text") return { table, method, ...(await byText(sql)) };
  try {
    const row = "savepoint" in sql ? await sql.savepoint((sp) => byRecord(sp)) : await byRecord(sql);
    return { table, method: "record", ...row };
  } catch (error) {
    if (method === "record") throw error;
    return { table, method: "text", ...(await byText(sql)) };
  }
}

/** Differences between what was dumped and what came back; empty when the restore is exact. */
export function compareFigures(expected: TableFigure[], actual: TableFigure[]): string[] {
  const problems: string[] = [];
  const got = new Map(actual.map((f) => [f.table, f]));
  for (const want of expected) {
    const have = got.get(want.table);
    if (!have) problems.push(`${want.table}: missing after restore`);
    else if (have.rows !== want.rows) problems.push(`${want.table}: ${have.rows} rows restored, ${want.rows} dumped`);
    else if (have.checksum !== want.checksum) problems.push(`${want.table}: row contents differ (checksum)`);
    got.delete(want.table);
  }
  for (const extra of got.keys()) problems.push(`${extra}: present after restore but not in the dump`);
  return problems;
}

function figuresPath(stateDir: string): string {
  return join(stateDir, "backup-figures.json");
}

function readFigures(stateDir: string): z.infer<typeof FiguresFileSchema> {
  try {
    const parsed = FiguresFileSchema.safeParse(JSON.parse(readFileSync(figuresPath(stateDir), "utf8")));
    if (parsed.success) return parsed.data;
  } catch {
    // missing or unreadable: start a new file
  }
  return { dumps: {} };
}

/** Keeps the figures of a dump (by its run id, also a tag on the snapshot) in the state directory, which is backed up too. */
export function recordFigures(stateDir: string, runId: string, tables: TableFigure[]): void {
  const file = readFigures(stateDir);
  file.dumps[runId] = { time: new Date().toISOString(), tables };
  const ids = Object.entries(file.dumps)
    .sort((a, b) => a[1].time.localeCompare(b[1].time))
    .map(([id]) => id);
  for (const id of ids.slice(0, Math.max(0, ids.length - KEEP_DUMPS))) delete file.dumps[id];
  writeFileAtomic(figuresPath(stateDir), `${JSON.stringify(file)}\n`, { mode: 0o600 });
}

export function figuresFor(stateDir: string, runId: string): TableFigure[] | undefined {
  return readFigures(stateDir).dumps[runId]?.tables;
}
