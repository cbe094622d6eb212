/**
 * Retention for meta.audit_log: `audit archive --before DATE --to FILE` moves the oldest rows
 * (every row up to the first one at or after DATE) into a file, with their chain, and removes them
 * in the transaction that appends a row recording the cut (from, through, the head hash, the file's
 * sha256), so the cut is itself evidence: `audit verify` accepts a chain that starts after row 1
 * only when such a row names exactly the hash the first remaining row links to.
 * `audit verify --archive FILE` checks a file alone and against the anchors.
 *
 * File format, JSON lines: a header {format, log, customer, from, through, rows, head_hash, before,
 * created}, then one ChainRow per line (audit-hash.ts), in seq order.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { z } from "zod";
import type { Sql } from "../../db/connect.ts";
import { createFileOnceFrom } from "../../lib/atomic-write.ts";
import { DatabaseError } from "../../lib/errors.ts";
import type { AuditEvent } from "../audit-sink.ts";
import { auditColumns } from "./audit.ts";
import { type Anchor, type AnchorPlace, signAnchor } from "./audit-anchor.ts";
import { type ChainRow, chainRows, GENESIS } from "./audit-hash.ts";
import { type ChainReport, rowProblem } from "./audit-verify.ts";

const FORMAT = "axe-audit-archive/1";
const PAGE = 1000;

const ArchiveHeader = z.strictObject({
  format: z.literal(FORMAT),
  log: z.literal("meta"),
  customer: z.string(),
  from: z.number().int().min(1),
  through: z.number().int().min(1),
  rows: z.number().int().min(1),
  head_hash: z.string(),
  before: z.string(),
  created: z.string(),
});
type ArchiveHeader = z.infer<typeof ArchiveHeader>;

const nullable = z.string().nullable();
const ArchivedRow = z.strictObject({
  seq: z.string().regex(/^[1-9][0-9]*$/),
  at: z.string(),
  who: z.string(),
  token_kind: nullable,
  reason: nullable,
  customer: nullable,
  entity: nullable,
  tool: nullable,
  outcome: z.string(),
  status: z.number().int().nullable(),
  duration_ms: z.number().int(),
  args_digest: nullable,
  request_id: nullable,
  detail: nullable,
  prev_hash: z.string(),
  hash: z.string(),
});

export interface ArchiveResult {
  rows: number;
  from?: number;
  through?: number;
  headHash?: string;
  fileSha256?: string;
}

const refuse = (message: string, hint: string) => new DatabaseError("AUDIT_ARCHIVE", message, hint);

/**
 * Moves meta.audit_log's rows before `before` into `file`; the file is complete and fsynced before the
 * rows go, and the cut is signed with the audit key (an anchor in `place`) before they go, so that
 * only a cut made by someone holding that key excuses the missing rows (audit-verify.ts).
 */
export async function archiveAudit(
  owner: Sql,
  options: { before: Date; file: string; who: string; customer: string; place: AnchorPlace },
): Promise<ArchiveResult> {
  if (existsSync(options.file))
    throw refuse(`${options.file} exists; an archive is never overwritten`, "choose a new file name");
  const started = performance.now();
  return owner.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('meta.audit_log'))`; // the chain trigger's lock: no row is appended meanwhile
    const [range] = await tx<{ first: string | null; cut: string | null }[]>`
      select (select min(seq) from meta.audit_log)::text as first,
             coalesce((select min(seq) - 1 from meta.audit_log where at >= ${options.before}),
                      (select max(seq) from meta.audit_log))::text as cut`;
    const from = Number(range?.first ?? 0);
    const through = Number(range?.cut ?? 0);
    if (!from || through < from) return { rows: 0 };
    const digest = createHash("sha256");
    let previous: { seq: number; hash: string } | undefined;
    let rows = 0;
    const header: ArchiveHeader = {
      format: FORMAT,
      log: "meta",
      customer: options.customer,
      from,
      through,
      rows: through - from + 1,
      head_hash: (await tx<{ hash: string }[]>`select hash from meta.audit_log where seq = ${through}`)[0]!.hash,
      before: options.before.toISOString(),
      created: new Date().toISOString(),
    };
    // The file is complete and durable (fsync, link, fsync of the directory) before any row goes.
    const published = await createFileOnceFrom(options.file, { mode: 0o600 }, async (append) => {
      const write = (line: string) => {
        digest.update(line);
        append(line);
      };
      write(`${JSON.stringify(header)}\n`);
      for (let after = String(from - 1); ; ) {
        const page = (await chainRows(tx, "meta.audit_log", after, PAGE)).filter((r) => Number(r.seq) <= through);
        for (const row of page) {
          const broken = rowProblem(row, previous);
          if (broken)
            throw refuse(
              `meta.audit_log is broken at row ${broken.seq} (${broken.reason}); nothing was archived`,
              "run `axe-appliance audit verify` and compare with the last backup before removing any row",
            );
          write(`${JSON.stringify(row)}\n`);
          previous = { seq: Number(row.seq), hash: row.hash };
          rows++;
        }
        if (page.length < PAGE) break;
        after = page.at(-1)!.seq;
      }
    });
    if (!published)
      throw refuse(`${options.file} appeared while archiving; nothing was archived`, "choose a new file name");
    const fileSha256 = digest.digest("hex");
    await signAnchor(tx, options.place, "archive", {
      log: "meta",
      through,
      head_hash: previous!.hash,
      file_sha256: fileSha256,
    });
    const marker: AuditEvent = {
      at: new Date(),
      who: options.who,
      customer: options.customer,
      tool: "audit archive",
      outcome: "ok",
      reason: "archived",
      durationMs: performance.now() - started,
      detail: {
        archive: {
          from,
          through,
          rows,
          head_hash: previous!.hash,
          before: options.before.toISOString(),
          file_sha256: fileSha256,
        },
      },
    };
    // Appended before the delete, so it links to the last archived row even when every row goes (an empty
    // table would make the trigger start a new chain at row 1 from the genesis hash).
    await tx`insert into meta.audit_log ${tx(auditColumns(marker))}`;
    await tx`select set_config('axe.audit_archive_through', ${String(through)}, true)`;
    await tx`delete from meta.audit_log where seq <= ${through}`;
    return { rows, from, through, headHash: previous!.hash, fileSha256 };
  });
}

export interface ArchiveReport extends ChainReport {
  fileSha256: string;
}

/** Checks an archive file: header, every row's link and hash, the head, and every anchor of meta in its range. */
export async function verifyArchiveFile(file: string, anchors: readonly Anchor[] = []): Promise<ArchiveReport> {
  const digest = createHash("sha256");
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  let header: ArchiveHeader | undefined;
  let previous: { seq: number; hash: string } | undefined;
  let firstPrev: string | undefined;
  const hashAt = new Map<number, string>();
  const report: ArchiveReport = { log: "meta", table: file, rows: 0, anchors: 0, unanchored: 0, fileSha256: "" };
  let number = 0;
  for await (const line of lines) {
    number++;
    digest.update(`${line}\n`);
    if (report.broken) continue; // still hashing the file
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      report.broken = { seq: previous ? previous.seq + 1 : 0, reason: `line ${number} is not JSON` };
      continue;
    }
    if (!header) {
      const parsed = ArchiveHeader.safeParse(json);
      if (!parsed.success) report.broken = { seq: 0, reason: `line 1 is not an ${FORMAT} header` };
      else header = parsed.data;
      continue;
    }
    const parsed = ArchivedRow.safeParse(json);
    if (!parsed.success) {
      report.broken = { seq: previous ? previous.seq + 1 : header.from, reason: `line ${number} is not an audit row` };
      continue;
    }
    const row: ChainRow = parsed.data;
    if (!previous) {
      firstPrev = row.prev_hash;
      if (Number(row.seq) !== header.from)
        report.broken = {
          seq: header.from,
          reason: `the file starts at row ${row.seq}, its header says ${header.from}`,
        };
    }
    report.broken ??= rowProblem(row, previous);
    if (report.broken) continue;
    previous = { seq: Number(row.seq), hash: row.hash };
    hashAt.set(previous.seq, row.hash);
    report.rows++;
  }
  report.fileSha256 = digest.digest("hex");
  if (!header) return { ...report, broken: report.broken ?? { seq: 0, reason: "the file is empty" } };
  report.first = header.from;
  report.last = previous?.seq;
  if (!report.broken && (previous?.seq !== header.through || previous.hash !== header.head_hash))
    report.broken = {
      seq: (previous?.seq ?? header.from - 1) + 1,
      reason: `the file ends at row ${previous?.seq ?? "none"}, its header says row ${header.through} with hash ${header.head_hash.slice(0, 12)}…`,
    };
  if (!report.broken && header.from === 1 && firstPrev !== GENESIS)
    report.broken = { seq: 1, reason: "prev_hash does not match the hash of the row before" };
  const heads = anchors.flatMap((a) => a.heads.filter((h) => h.log === "meta").map((h) => ({ ...h, at: a.at })));
  for (const head of heads.sort((a, b) => a.seq - b.seq)) {
    if (head.seq < header.from - 1 || head.seq > header.through) continue;
    report.anchors++;
    const seen = head.seq === header.from - 1 ? firstPrev : hashAt.get(head.seq);
    if (seen === head.hash) report.anchored = { seq: head.seq, at: head.at };
    else if (!report.broken)
      report.broken = { seq: head.seq, reason: `row ${head.seq} is not the row the anchor of ${head.at} signed` };
  }
  report.unanchored = (report.last ?? 0) - (report.anchored?.seq ?? header.from - 1);
  return report;
}

/** The archive rows recorded in meta.audit_log (the cuts), for `audit verify --archive` to match a file against. */
export async function archiveCuts(
  owner: Sql,
): Promise<Array<{ seq: number; through: number; headHash: string; fileSha256: string }>> {
  const rows = await owner<{ seq: string; through: string; head_hash: string; file_sha256: string }[]>`
    select seq::text as seq, detail->'archive'->>'through' as through, detail->'archive'->>'head_hash' as head_hash,
           detail->'archive'->>'file_sha256' as file_sha256
    from meta.audit_log as l where detail ? 'archive' order by l.seq`;
  return rows.map((r) => ({
    seq: Number(r.seq),
    through: Number(r.through),
    headHash: r.head_hash,
    fileSha256: r.file_sha256,
  }));
}
