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

export const FileFigureSchema = z.object({ path: z.string(), size: z.number(), sha256: z.string() });
export type FileFigure = z.infer<typeof FileFigureSchema>;

const FiguresFileSchema = z.object({
  dumps: z.record(z.string(), z.object({ time: z.string(), tables: z.array(TableFigureSchema) })),
  /** Per files snapshot (by run id): each file's sha256 as it was read at backup time. */
  files: z.record(z.string(), z.object({ time: z.string(), files: z.array(FileFigureSchema) })).default({}),
});
type FiguresFile = z.infer<typeof FiguresFileSchema>;

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
  const byRecord = methods ? undefined : await recordHashable(sql);
  const figures: TableFigure[] = [];
  for (const { schema, name } of tables) {
    const table = `${schema}.${name}`;
    const method = methods?.get(table) ?? (byRecord?.has(table) ? undefined : "text");
    figures.push(await tableFigure(sql, schema, name, method));
  }
  return figures;
}

/**
 * Tables whose every column type has an extended hash function, so `hash_record_extended` works on
 * their rows. Read from the catalog, the way Postgres' type cache finds one (a default hash operator
 * class with support function 2, for the type, a binary-coercible type, or the array or enum
 * family); trying and failing would log an error in the server log on every dump.
 */
async function recordHashable(sql: Queryable): Promise<Set<string>> {
  const types = new Map(
    (
      await sql<{ oid: number; typtype: string; typcategory: string; typelem: number; typbasetype: number }[]>`
      select oid::int, typtype, typcategory, typelem::int, typbasetype::int from pg_type`
    ).map((t) => [t.oid, t]),
  );
  const withHash = new Set(
    (
      await sql<{ type: number }[]>`
      select oc.opcintype::int as type from pg_opclass oc join pg_am am on am.oid = oc.opcmethod
      where am.amname = 'hash' and oc.opcdefault and exists (
        select 1 from pg_amproc p where p.amprocfamily = oc.opcfamily and p.amprocnum = 2 and p.amproclefttype = oc.opcintype)`
    ).map((r) => r.type),
  );
  const casts = await sql<{ source: number; target: number }[]>`
    select castsource::int as source, casttarget::int as target from pg_cast where castmethod = 'b'`;
  const polymorphic = new Map(
    (
      await sql<{ name: string; oid: number }[]>`
      select typname as name, oid::int from pg_type where typname in ('anyarray', 'anyenum')`
    ).map((r) => [r.name, r.oid]),
  );
  const hashable = (oid: number, depth = 0): boolean => {
    const t = types.get(oid);
    if (!t || depth > 8) return false;
    if (t.typtype === "d") return hashable(t.typbasetype, depth + 1);
    if (withHash.has(oid) || casts.some((c) => c.source === oid && withHash.has(c.target))) return true;
    if (t.typcategory === "A" && t.typelem)
      return withHash.has(polymorphic.get("anyarray")!) && hashable(t.typelem, depth + 1);
    if (t.typtype === "e") return withHash.has(polymorphic.get("anyenum")!);
    return false; // ranges, composites and the rest: hash the row's text
  };
  const columns = await sql<{ schema: string; name: string; type: number }[]>`
    select n.nspname as schema, c.relname as name, a.atttypid::int as type
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
      and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%'`;
  const refused = new Set(columns.filter((c) => !hashable(c.type)).map((c) => `${c.schema}.${c.name}`));
  return new Set(columns.map((c) => `${c.schema}.${c.name}`).filter((t) => !refused.has(t)));
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
  // Named in pg_catalog: these run as the owner, and a more specific hash function planted in public would win.
  const byText = async (q: Queryable) =>
    (
      await q<{ rows: string; checksum: string }[]>`
      select count(*)::text as rows, coalesce(sum(pg_catalog.hashtextextended(t::text, 0)), 0)::text as checksum from ${q(schema)}.${q(name)} t`
    )[0]!;
  const byRecord = async (q: Queryable) =>
    (
      await q<{ rows: string; checksum: string }[]>`
      select count(*)::text as rows, coalesce(sum(pg_catalog.hash_record_extended(t, 0)), 0)::text as checksum from ${q(schema)}.${q(name)} t`
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

function readFigures(stateDir: string): FiguresFile {
  try {
    const parsed = FiguresFileSchema.safeParse(JSON.parse(readFileSync(figuresPath(stateDir), "utf8")));
    if (parsed.success) return parsed.data;
  } catch {
    // missing or unreadable: start a new file
  }
  return { dumps: {}, files: {} };
}

/** Keeps the figures of a dump (by its run id, also a tag on the snapshot) in the state directory, which is backed up too. */
export function recordFigures(stateDir: string, runId: string, tables: TableFigure[]): void {
  const file = readFigures(stateDir);
  file.dumps[runId] = { time: new Date().toISOString(), tables };
  writeFigures(stateDir, file);
}

/** Keeps the sha256 figures of a files snapshot (by its run id). */
export function recordFileFigures(stateDir: string, runId: string, files: FileFigure[]): void {
  const file = readFigures(stateDir);
  file.files[runId] = { time: new Date().toISOString(), files };
  writeFigures(stateDir, file);
}

function writeFigures(stateDir: string, file: FiguresFile): void {
  for (const kind of [file.dumps, file.files] as Array<Record<string, { time: string }>>) {
    const ids = Object.entries(kind)
      .sort((a, b) => a[1].time.localeCompare(b[1].time))
      .map(([id]) => id);
    for (const id of ids.slice(0, Math.max(0, ids.length - KEEP_DUMPS))) delete kind[id];
  }
  writeFileAtomic(figuresPath(stateDir), `${JSON.stringify(file)}\n`, { mode: 0o600 });
}

export function figuresFor(stateDir: string, runId: string): TableFigure[] | undefined {
  return readFigures(stateDir).dumps[runId]?.tables;
}

export function fileFiguresFor(stateDir: string, runId: string): FileFigure[] | undefined {
  return readFigures(stateDir).files[runId]?.files;
}
