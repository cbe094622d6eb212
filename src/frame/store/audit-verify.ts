/**
 * `audit verify`: walks each audit chain in seq order, recomputing every hash here (audit-hash.ts,
 * never the database's own function), and holds it against every anchor (audit-anchor.ts).
 *
 * What it proves: every row up to the newest anchor that still matches is the row that was
 * written (changed, removed, inserted or reordered rows break a link or a hash, and a tail that
 * was rewritten with recomputed hashes, or cut, no longer matches the head an anchor signed).
 * What it cannot prove: rows written after that anchor (at most one anchor period, plus the time
 * since serve last ran) could be rewritten by the database owner unseen; the count of unanchored
 * rows is in the report. Runs with the owner connection (it reads every entity's log).
 */
import type { Sql } from "../../db/connect.ts";
import type { Anchor } from "./audit-anchor.ts";
import { type ChainRow, chainHash, chainRows, GENESIS } from "./audit-hash.ts";
import { entitySchema } from "./names.ts";
import type { Tx } from "./queryable.ts";

export interface ChainReport {
  /** "meta" or the entity name. */
  log: string;
  table: string;
  rows: number;
  /** First and last seq in the table (the first is above 1 after `audit archive`). */
  first?: number;
  last?: number;
  /** The newest anchor that matches the chain: rows up to its seq are proven. */
  anchored?: { seq: number; at: string };
  /** Anchors held against this chain. */
  anchors: number;
  /** Rows after the newest matching anchor: not covered by a signature yet. */
  unanchored: number;
  broken?: { seq: number; reason: string };
}

/** What verification needs of an anchor: one log's signed head. */
export interface AnchoredHead {
  seq: number;
  hash: string;
  at: string;
}

const PAGE = 1000;

/** An archive cut recorded in the chain (store/audit-archive.ts): rows up to `through` left for a file. */
export function archiveCut(detail: string | null): { through: number; head: string } | undefined {
  if (!detail?.includes('"archive"')) return undefined;
  const archive = (JSON.parse(detail) as { archive?: { through?: unknown; head_hash?: unknown } }).archive;
  return typeof archive?.through === "number" && typeof archive.head_hash === "string"
    ? { through: archive.through, head: archive.head_hash }
    : undefined;
}

/** Checks one row against the row before it (undefined for the first row of the table). */
export function rowProblem(row: ChainRow, previous: { seq: number; hash: string } | undefined): ChainReport["broken"] {
  const seq = Number(row.seq);
  if (previous && seq !== previous.seq + 1)
    return { seq: previous.seq + 1, reason: `row ${previous.seq + 1} is missing (next row is ${seq})` };
  if (previous ? row.prev_hash !== previous.hash : seq === 1 && row.prev_hash !== GENESIS)
    return { seq, reason: "prev_hash does not match the hash of the row before" };
  if (chainHash(row) !== row.hash) return { seq, reason: "the row's columns do not match its hash (it was changed)" };
  return undefined;
}

export async function verifyChain(
  sql: Sql,
  log: string,
  schema: string,
  anchors: readonly AnchoredHead[] = [],
  /** Archive cuts signed with the audit key (anchors of `audit archive`): only these excuse a missing head. */
  signedCuts: readonly { through: number; head_hash: string }[] = [],
): Promise<ChainReport> {
  const table = `${schema}.audit_log`;
  const report: ChainReport = { log, table, rows: 0, anchors: anchors.length, unanchored: 0 };
  const anchoredSeqs = new Set(anchors.map((a) => a.seq));
  const hashAt = new Map<number, string>();
  const cuts = new Map<number, string>();
  let first: ChainRow | undefined;
  let previous: { seq: number; hash: string } | undefined;
  await sql.begin(async (tx: Tx) => {
    await tx`set local search_path = pg_catalog`; // reads resolve only the system's functions and operators
    for (let after = "0"; ; ) {
      const rows = await chainRows(tx, table, after, PAGE);
      for (const row of rows) {
        first ??= row;
        const broken = rowProblem(row, previous);
        if (broken) return void (report.broken = broken);
        const seq = Number(row.seq);
        const cut = schema === "meta" ? archiveCut(row.detail) : undefined; // entity logs are never archived
        if (cut) cuts.set(cut.through, cut.head);
        if (anchoredSeqs.has(seq)) hashAt.set(seq, row.hash);
        report.rows++;
        previous = { seq, hash: row.hash };
      }
      if (rows.length < PAGE) return;
      after = rows.at(-1)!.seq;
    }
  });
  const firstSeq = first ? Number(first.seq) : 1;
  report.first = first ? firstSeq : undefined;
  report.last = previous?.seq;
  if (!report.broken && first && firstSeq > 1 && cuts.get(firstSeq - 1) !== first.prev_hash)
    report.broken = {
      seq: 1,
      reason: `rows 1 to ${firstSeq - 1} are missing, and no archive row in the chain records their removal`,
    };
  // The row is the database's word, which its owner can write: the cut must also be one the audit key signed.
  if (
    !report.broken &&
    first &&
    firstSeq > 1 &&
    !signedCuts.some((c) => c.through === firstSeq - 1 && c.head_hash === first!.prev_hash)
  )
    report.broken = {
      seq: 1,
      reason: `rows 1 to ${firstSeq - 1} are missing; an archive row records their removal, but no anchor signed that cut (\`audit archive\` signs every cut it makes)`,
    };
  // Anchors, oldest head first: the first one the chain no longer matches ends what is proven.
  const verifiedThrough = report.broken ? report.broken.seq - 1 : (previous?.seq ?? firstSeq - 1);
  let good: AnchoredHead | undefined;
  for (const anchor of [...anchors].sort((a, b) => a.seq - b.seq)) {
    if (anchor.seq < firstSeq - 1) continue; // archived: `audit verify --archive FILE` holds it against the file
    const seen = anchor.seq === firstSeq - 1 ? (first?.prev_hash ?? GENESIS) : hashAt.get(anchor.seq);
    if (anchor.seq > verifiedThrough && report.broken) break; // beyond a break already reported
    if (seen === anchor.hash) {
      good = anchor;
      continue;
    }
    const from = good ? good.seq + 1 : firstSeq;
    const was =
      anchor.seq > verifiedThrough
        ? `the log ends at row ${verifiedThrough}, but the anchor of ${anchor.at} saw row ${anchor.seq}: rows were removed`
        : `row ${anchor.seq} is not the row the anchor of ${anchor.at} signed: rows were rewritten`;
    const since = good ? `the last anchor that holds (${good.at}, row ${good.seq})` : "the start of the log";
    if (!report.broken || from < report.broken.seq) {
      report.broken = { seq: from, reason: `${was}; row ${from} is the first row after ${since}` };
      report.rows = from - firstSeq; // the rows an anchor still vouches for
    }
    break;
  }
  if (good && good.seq >= firstSeq) report.anchored = { seq: good.seq, at: good.at };
  report.unanchored = Math.max(0, (report.last ?? 0) - Math.max(good?.seq ?? 0, firstSeq - 1));
  return report;
}

/** Verifies meta.audit_log and every entity's log (or one entity's, or meta's), each against its anchors. */
export async function verifyAudit(
  sql: Sql,
  options: { entity?: string; metaOnly?: boolean; anchors?: readonly Anchor[] } = {},
): Promise<ChainReport[]> {
  const heads = (log: string) =>
    (options.anchors ?? []).flatMap((a) =>
      a.heads.filter((h) => h.log === log).map((h) => ({ seq: h.seq, hash: h.hash, at: a.at })),
    );
  const entities = options.metaOnly
    ? []
    : options.entity
      ? [options.entity]
      : (await sql<{ name: string }[]>`select name from meta.entities order by name`).map((r) => r.name);
  const cuts = (options.anchors ?? []).flatMap((a) => (a.cut ? [a.cut] : []));
  const reports = options.entity ? [] : [await verifyChain(sql, "meta", "meta", heads("meta"), cuts)];
  for (const entity of entities) reports.push(await verifyChain(sql, entity, entitySchema(entity), heads(entity)));
  // No entity is ever removed: a log an anchor signed that meta.entities no longer names was taken away.
  if (!options.entity && !options.metaOnly)
    for (const log of new Set((options.anchors ?? []).flatMap((a) => a.heads.map((h) => h.log))))
      if (log !== "meta" && !entities.includes(log)) reports.push(goneLog(log, heads(log)));
  return reports;
}

function goneLog(log: string, anchors: readonly AnchoredHead[]): ChainReport {
  const newest = anchors.reduce((a, b) => (b.seq >= a.seq ? b : a));
  return {
    log,
    table: `entity_${log}.audit_log`,
    rows: 0,
    anchors: anchors.length,
    unanchored: 0,
    broken: {
      seq: 1,
      reason: `there is no entity ${log} in meta.entities, but the anchor of ${newest.at} signed its row ${newest.seq}: the entity and its log were removed`,
    },
  };
}
