import { userInfo } from "node:os";
import type { Config } from "../config/load.ts";
import { CONFIG_OPTION, type Command, JSON_OPTION, stringFlag } from "../lib/cli.ts";
import { DatabaseError, UsageError } from "../lib/errors.ts";
import { withOwnerDatabase } from "./frame-db.ts";

/** Who an operator command acts as, in the audit rows it writes. */
export function operatorName(): string {
  return `cli:${process.env.SUDO_USER || userInfo().username}`;
}

interface Report {
  table: string;
  rows: number;
  anchored?: { seq: number; at: string };
  unanchored: number;
  broken?: { seq: number; reason: string };
}

function line(r: Report): string {
  const state = r.broken ? "BROKEN" : "ok    ";
  const anchored = r.anchored
    ? `; anchored through row ${r.anchored.seq} (${r.anchored.at})${r.unanchored ? `, ${r.unanchored} ${r.unanchored === 1 ? "row" : "rows"} since` : ""}`
    : r.rows
      ? "; no anchor covers these rows yet"
      : "";
  return `${state}  ${r.table}  ${r.rows} rows verified${r.broken ? `; row ${r.broken.seq}: ${r.broken.reason}` : anchored}`;
}

async function loadAnchors(config: Config) {
  const [{ anchorPlace, readAnchors }, { auditPublicKeys }] = await Promise.all([
    import("../frame/store/audit-anchor.ts"),
    import("../frame/crypto/audit-key.ts"),
  ]);
  const read = await readAnchors(anchorPlace(config));
  const keyless = auditPublicKeys(config.paths.secrets).length === 0;
  return { ...read, keyless };
}

const failIfBroken = (reports: Report[], problems: string[]) => {
  const broken = reports.find((r) => r.broken);
  if (broken)
    throw new DatabaseError(
      "AUDIT_CHAIN_BROKEN",
      `audit chain ${broken.table} is broken at row ${broken.broken!.seq}: ${broken.broken!.reason}`,
      "compare the rows from there on with the last backup (restic snapshots hold the database and the anchors)",
    );
  if (problems.length)
    throw new DatabaseError(
      "AUDIT_ANCHORS_BROKEN",
      `the anchors file holds a line that does not verify: ${problems[0]}`,
      "someone edited the anchors file, or a key is missing from audit-keys.json: compare both with the last backup",
    );
};

export const auditCommand: Command = {
  name: "audit",
  summary: "the hash-chained audit log: verify, anchor, archive",
  subcommands: [
    {
      name: "verify",
      summary: "walk every chain, hold it against the signed anchors, name the first bad row",
      usage: "[--entity E] [--archive FILE] [--json] [--config DIR]",
      details: `
Checks meta.audit_log (refused requests, operator actions) and every entity's audit_log, or one
entity's with --entity: seq has no gaps, each prev_hash is the previous row's hash, each hash (computed
here, not by the database) matches its row, and each chain still has the head that every anchor in
{data_dir}/state/audit-anchors.jsonl signed. A tail rewritten or cut by someone with the database
owner's password breaks an anchor: the message names the first row after the last anchor that holds.
Rows written since the newest anchor (at most frame.audit_anchor_minutes ago while serve runs) are
not covered by a signature yet; the report counts them.

--archive FILE checks a file written by \`audit archive\` instead: its rows, their chain, its head,
the anchors that fall in its range, and that the cut the audit key signed (and the row recording it in
meta.audit_log, while that row is there) names the file's sha256.
Exit 0 when everything holds, 4 when a chain, an anchor line or the archive does not.`,
      options: {
        entity: { type: "string", value: "E", description: "verify this entity's log only" },
        archive: { type: "string", value: "FILE", description: "verify an archive file written by `audit archive`" },
        json: JSON_OPTION,
        config: CONFIG_OPTION,
      },
      run: (inv) =>
        withOwnerDatabase(stringFlag(inv, "config"), async (sql, config) => {
          const archive = stringFlag(inv, "archive");
          const { anchors, problems, keyless } = await loadAnchors(config);
          if (archive !== undefined) return verifyArchive(sql, archive, anchors, problems, Boolean(inv.values.json));
          const [{ verifyAudit }, { ENTITY_NAME }] = await Promise.all([
            import("../frame/store/audit-verify.ts"),
            import("../frame/store/names.ts"),
          ]);
          const entity = stringFlag(inv, "entity");
          if (entity !== undefined) {
            const [known] = ENTITY_NAME.test(entity)
              ? await sql`select 1 from meta.entities where name = ${entity}`
              : [];
            if (!known)
              throw new UsageError(
                "UNKNOWN_ENTITY",
                `${inv.path}: no entity '${entity}'`,
                "see `axe-appliance entity list`",
              );
          }
          const reports = await verifyAudit(sql, { ...(entity ? { entity } : {}), anchors });
          if (inv.values.json) console.log(JSON.stringify({ reports, anchors: anchors.length, problems }));
          else {
            for (const r of reports) console.log(line(r));
            for (const p of problems) console.log(`BROKEN  anchors  ${p}`);
            if (keyless)
              console.log(
                "note: no audit key yet, so no chain head is signed and a rewritten tail would go unseen; run `axe-appliance keys init`",
              );
          }
          failIfBroken(reports, problems);
        }),
    },
    {
      name: "anchor",
      summary: "sign every chain's head now (serve does it every frame.audit_anchor_minutes)",
      usage: "[--config DIR]",
      details: `
Reads the last row of meta.audit_log and of every entity's audit_log and appends their seq and hash,
signed with {secrets_dir}/audit.key, to {data_dir}/state/audit-anchors.jsonl. serve does this on its
own every frame.audit_anchor_minutes and when it stops, and \`backup run\` before each snapshot.`,
      options: { config: CONFIG_OPTION },
      run: (inv) =>
        withOwnerDatabase(stringFlag(inv, "config"), async (sql, config) => {
          const [{ anchorPlace, signAnchor }, { initAuditKey }] = await Promise.all([
            import("../frame/store/audit-anchor.ts"),
            import("../frame/crypto/audit-key.ts"),
          ]);
          await initAuditKey(config.paths.secrets);
          const anchor = await signAnchor(sql, anchorPlace(config), "manual");
          console.log(`signed ${anchor.heads.map((h) => `${h.log} #${h.seq}`).join(", ")} at ${anchor.at}`);
        }),
    },
    {
      name: "archive",
      summary: "move meta.audit_log's rows before DATE into FILE (retention); the cut is recorded in the chain",
      usage: "--before DATE --to FILE [--config DIR]",
      details: `
Writes every row of meta.audit_log up to the first one at or after DATE (an ISO date or time, e.g.
2026-01-01) to FILE (JSON lines, mode 0600, never overwritten) with its chain, then removes those rows
in the transaction that appends a row recording the cut: the rows' range, the hash of the last one and
the file's sha256; the cut is signed with the audit key first (an anchor; made by \`keys init\` or now).
\`audit verify\` accepts the shortened chain because of that row and that signature;
\`audit verify --archive FILE\` checks the file. The chain is verified first: a broken chain is not
archived. Entity logs are not archived. Keep FILE with the backups: it is the only copy of those rows.`,
      options: {
        before: { type: "string", value: "DATE", description: "archive the rows older than this" },
        to: { type: "string", value: "FILE", description: "the archive file to write" },
        config: CONFIG_OPTION,
      },
      run: (inv) => {
        const beforeText = stringFlag(inv, "before", true);
        const file = stringFlag(inv, "to", true);
        const before = new Date(beforeText);
        if (!/^\d{4}-\d{2}-\d{2}/.test(beforeText) || Number.isNaN(before.getTime()))
          throw new UsageError(
            "BAD_ARGUMENT",
            `${inv.path}: --before '${beforeText}' is not an ISO date`,
            "e.g. --before 2026-01-01",
          );
        return withOwnerDatabase(stringFlag(inv, "config"), async (sql, config) => {
          const [{ archiveAudit }, { verifyAudit }] = await Promise.all([
            import("../frame/store/audit-archive.ts"),
            import("../frame/store/audit-verify.ts"),
          ]);
          const { anchors, problems } = await loadAnchors(config);
          failIfBroken(await verifyAudit(sql, { metaOnly: true, anchors }), problems);
          const [{ anchorPlace }, { initAuditKey }] = await Promise.all([
            import("../frame/store/audit-anchor.ts"),
            import("../frame/crypto/audit-key.ts"),
          ]);
          await initAuditKey(config.paths.secrets); // the cut is signed: only the audit key's holder can excuse removed rows
          const result = await archiveAudit(sql, {
            before,
            file,
            who: operatorName(),
            customer: config.customer.name,
            place: anchorPlace(config),
          });
          if (!result.rows)
            return void console.log(`meta.audit_log has no rows before ${before.toISOString()}; nothing archived`);
          console.log(
            `archived rows ${result.from} to ${result.through} (${result.rows}) of meta.audit_log into ${file} (sha256 ${result.fileSha256}); the cut is recorded in the chain`,
          );
        });
      },
    },
  ],
};

async function verifyArchive(
  sql: import("../db/connect.ts").Sql,
  file: string,
  anchors: import("../frame/store/audit-anchor.ts").Anchor[],
  problems: string[],
  json: boolean,
): Promise<void> {
  const { archiveCuts, verifyArchiveFile } = await import("../frame/store/audit-archive.ts");
  const report = await verifyArchiveFile(file, anchors);
  const cut = (await archiveCuts(sql)).find((c) => c.through === report.last);
  // The row is the database's word, and it may itself be archived since: the signature is what vouches for the file.
  const signed = anchors.flatMap((a) => (a.cut && a.cut.through === report.last ? [a.cut] : []));
  const signedThis = signed.some((c) => c.file_sha256 === report.fileSha256);
  const notes = [
    ...(signedThis ? ["the audit key signed this cut and this file's sha256"] : []),
    ...(cut?.fileSha256 === report.fileSha256
      ? [`meta.audit_log row ${cut.seq} records this cut and this file's sha256`]
      : []),
    ...(!cut && signedThis ? ["meta.audit_log holds no row recording this cut (it was archived since)"] : []),
  ];
  if (json) console.log(JSON.stringify({ report, cut, signed: signedThis, problems }));
  else {
    console.log(line(report));
    for (const note of notes) console.log(`        ${note}`);
    for (const p of problems) console.log(`BROKEN  anchors  ${p}`);
  }
  failIfBroken([report], problems);
  const sha = `sha256 ${report.fileSha256.slice(0, 16)}…`;
  if (signed.length && !signedThis)
    throw new DatabaseError(
      "AUDIT_ARCHIVE_MISMATCH",
      `${file} is not the archive the audit key signed for rows up to ${report.last} (${sha}, the signed cut says ${signed[0]!.file_sha256.slice(0, 16)}…)`,
      "find the archive file whose sha256 matches; this one was changed or is another cut",
    );
  if (cut && cut.fileSha256 !== report.fileSha256)
    throw new DatabaseError(
      "AUDIT_ARCHIVE_MISMATCH",
      `${file} is not the archive meta.audit_log row ${cut.seq} records (${sha}, the row says ${cut.fileSha256.slice(0, 16)}…)`,
      "find the archive file whose sha256 matches; this one was changed or is another cut",
    );
  if (!signedThis && !cut)
    throw new DatabaseError(
      "AUDIT_ARCHIVE_MISMATCH",
      `nothing vouches for ${file}: no anchor signed a cut through row ${report.last}, and meta.audit_log holds no row recording it`,
      "check that the anchors file is this machine's (the last backup holds it); every cut `audit archive` makes is signed",
    );
}
