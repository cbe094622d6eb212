/**
 * What a tier can restore to a point from: its base backups and its WAL, read from one `restic
 * snapshots` call (the tags say it all) plus, on the local tier, the spool. wal-ship tags each WAL
 * snapshot with its first and last segment and, for a base backup's `.backup` file, where that base
 * backup ends (`base-end:<run id>:<stop LSN>:<push time>`): a base backup is usable from its end on.
 * A target before a tier's oldest usable base backup or past its newest WAL is refused with the
 * range the tier reaches.
 */
import { BackupError } from "../lib/errors.ts";
import type { BackupContext } from "./context.ts";
import type { Repo, Snapshot, TierName } from "./restic.ts";
import { listSpool, readSpoolFile, type SpoolEntry } from "./spool.ts";
import { BASE_TAG, RUN_TAG_PREFIX, WAL_TAG } from "./tags.ts";

export const WAL_FIRST = "wal-first:";
export const WAL_LAST = "wal-last:";
export const BASE_END = "base-end:";
/** A WAL segment's name (timeline, log, segment), not a history or backup label file. */
export const SEGMENT_NAME = /^[0-9A-F]{24}$/;
/** initdb's default; the LSN arithmetic of --to-lsn assumes it. */
const SEGMENT_BYTES = 16n * 1024n * 1024n;

export type PointTarget =
  | { kind: "time"; time: Date }
  | { kind: "lsn"; lsn: bigint; text: string }
  /** A restore point (pg_create_restore_point) at `lsn`: the drill's own moment. */
  | { kind: "name"; name: string; lsn: bigint }
  | { kind: "latest" };

export interface BaseBackup {
  snapshot: Snapshot;
  runId?: string;
  /** restic's time for the snapshot: the base backup started then. */
  start: Date;
  /** Where it is consistent (from its `.backup` file); unknown until its WAL was shipped. */
  end?: { time: Date; lsn: bigint };
}

export interface WalSnapshot {
  snapshot: Snapshot;
  time: Date;
  first?: string;
  last?: string;
}

export interface Catalogue {
  tier: TierName;
  bases: BaseBackup[];
  wal: WalSnapshot[];
  /** The local tier's spooled segments, not yet in a snapshot (or not yet everywhere). */
  spool: SpoolEntry[];
  /** Every snapshot of this host in the tier, of any tag: how new the copy is. */
  snapshots: Snapshot[];
}

export interface RestorePlan {
  base: BaseBackup;
  /** WAL snapshots to fetch before recovery starts, oldest first. */
  wal: WalSnapshot[];
  /** Newer WAL snapshots, fetched one at a time if recovery ends before the target. */
  more: WalSnapshot[];
}

/** LSN text (`0/3000138`) as a number. */
export function parseLsn(text: string): bigint | undefined {
  const m = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(text.trim());
  return m ? (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`) : undefined;
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The first LSN after a segment (its name: timeline, log id, segment within the log id). */
export function segmentEnd(name: string): bigint {
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  return ((log << 32n) | (seg * SEGMENT_BYTES)) + SEGMENT_BYTES;
}

/**
 * The tag for a `.backup` file wal-ship stages: which base backup (its label, `axe run:<id>`) ends
 * at which LSN, and when (the file's push time: at or just after the end). Undefined for a base
 * backup not ours.
 */
export function baseEndTag(content: string, pushedMs: number): string | undefined {
  const run = /^LABEL: axe run:([0-9a-f]+)$/m.exec(content)?.[1];
  const stop = /^STOP WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(content)?.[1];
  if (!run || !stop) return undefined;
  return `${BASE_END}${run}:${stop}:${Math.ceil(pushedMs / 1000)}`;
}

function parseBaseEnd(tag: string): { runId: string; lsn: bigint; time: Date } | undefined {
  const [runId, lsnText, seconds] = tag.slice(BASE_END.length).split(":");
  const lsn = lsnText ? parseLsn(lsnText) : undefined;
  if (!runId || lsn === undefined || !seconds || !/^\d+$/.test(seconds)) return undefined;
  return { runId, lsn, time: new Date(Number(seconds) * 1000) };
}

const tagged = (s: Snapshot, prefix: string) => (s.tags ?? []).find((t) => t.startsWith(prefix))?.slice(prefix.length);

/** The tier's base backups and WAL snapshots of this host (and, for local, the spool). */
export async function readCatalogue(ctx: BackupContext, repo: Repo, spool?: string): Promise<Catalogue> {
  const snapshots = (await ctx.restic().snapshots(repo, ["--host", ctx.host])).sort((a, b) =>
    a.time.localeCompare(b.time),
  );
  const has = (s: Snapshot, tag: string) => (s.tags ?? []).includes(tag);
  const wal: WalSnapshot[] = snapshots
    .filter((s) => has(s, WAL_TAG))
    .map((s) => ({ snapshot: s, time: new Date(s.time), first: tagged(s, WAL_FIRST), last: tagged(s, WAL_LAST) }));
  const ends = new Map<string, { lsn: bigint; time: Date }>();
  for (const s of wal)
    for (const tag of s.snapshot.tags ?? []) {
      const end = tag.startsWith(BASE_END) ? parseBaseEnd(tag) : undefined;
      if (end) ends.set(end.runId, end);
    }
  const spooled = repo.tier === "local" && spool ? listSpool(spool) : [];
  for (const entry of spooled.filter((e) => e.name.endsWith(".backup"))) {
    try {
      const tag = baseEndTag(readSpoolFile(spool!, entry.name).toString("utf8"), entry.mtimeMs);
      const end = tag ? parseBaseEnd(tag) : undefined;
      if (end) ends.set(end.runId, end);
    } catch {
      // a refused or vanished entry: wal-ship names it
    }
  }
  const bases = snapshots
    .filter((s) => has(s, BASE_TAG))
    .map((s) => {
      const runId = tagged(s, RUN_TAG_PREFIX);
      const end = runId ? ends.get(runId) : undefined;
      return { snapshot: s, runId, start: new Date(s.time), ...(end ? { end } : {}) };
    });
  return { tier: repo.tier, bases, wal, spool: spooled.filter((e) => SEGMENT_NAME.test(e.name)), snapshots };
}

/** The newest moment and LSN the tier's WAL can reach: its newest WAL snapshot or spooled segment. */
function walReach(catalogue: Catalogue): { time?: Date; lsn?: bigint } {
  const times = [...catalogue.wal.map((w) => w.time.getTime()), ...catalogue.spool.map((e) => e.mtimeMs)];
  const lasts = [...catalogue.wal.map((w) => w.last), ...catalogue.spool.map((e) => e.name)].filter((n): n is string =>
    Boolean(n),
  );
  const newest = lasts.sort().at(-1);
  return {
    ...(times.length ? { time: new Date(Math.max(...times)) } : {}),
    ...(newest ? { lsn: segmentEnd(newest) } : {}),
  };
}

/** "from ... to ...", in time or in LSN, for a refusal. */
export function describeRange(catalogue: Catalogue, inLsn = false): string {
  const usable = catalogue.bases.filter((b) => b.end);
  const reach = walReach(catalogue);
  if (!usable.length)
    return catalogue.bases.length
      ? `the ${catalogue.tier} tier has ${catalogue.bases.length} base backup${catalogue.bases.length === 1 ? "" : "s"} but not yet the WAL that ends ${catalogue.bases.length === 1 ? "it" : "them"}`
      : `the ${catalogue.tier} tier has no base backup`;
  const oldest = usable[0]!.end!;
  const from = inLsn ? `LSN ${formatLsn(oldest.lsn)}` : oldest.time.toISOString();
  const to = inLsn
    ? reach.lsn === undefined
      ? "?"
      : `LSN ${formatLsn(reach.lsn)}`
    : (reach.time ?? oldest.time).toISOString();
  return `the ${catalogue.tier} tier reaches from ${from} (the end of its oldest base backup) to ${to} (its newest WAL)`;
}

/** The newest base backup that ends before the target, and the WAL snapshots after its start. */
export function planRestore(catalogue: Catalogue, target: PointTarget): RestorePlan {
  const usable = catalogue.bases.filter((b) => b.end);
  const reach = walReach(catalogue);
  const refuse = (why: string) =>
    new BackupError(
      "PITR_OUT_OF_RANGE",
      `${why}; ${describeRange(catalogue, target.kind === "lsn" || target.kind === "name")}`,
      usable.length
        ? "pick a target inside that range, or another tier with --tier"
        : "run `axe-appliance backup run` (a base backup) and `backup wal-ship`, or restore from another tier with --tier",
    );
  if (!usable.length) throw refuse("no base backup to start from");
  let base: BaseBackup | undefined;
  if (target.kind === "time") {
    base = usable.filter((b) => b.end!.time <= target.time).at(-1);
    if (!base) throw refuse(`${target.time.toISOString()} is before the end of the oldest base backup`);
    if (reach.time && target.time > reach.time) throw refuse(`${target.time.toISOString()} is past the newest WAL`);
  } else if (target.kind === "lsn" || target.kind === "name") {
    const text = target.kind === "lsn" ? `LSN ${target.text}` : `restore point ${target.name}`;
    base = usable.filter((b) => b.end!.lsn <= target.lsn).at(-1);
    if (!base) throw refuse(`${text} is before the end of the oldest base backup`);
    if (reach.lsn !== undefined && target.lsn > reach.lsn) throw refuse(`${text} is past the newest WAL`);
  } else base = usable.at(-1)!;
  // Every segment a base backup needs was archived after it started, so older WAL snapshots hold none of them.
  const after = catalogue.wal.filter((w) => w.time >= base.start);
  const needed =
    target.kind === "time"
      ? after.filter((w) => w.time <= target.time).length + 1
      : target.kind === "lsn" || target.kind === "name"
        ? after.filter((w) => !w.first || segmentEnd(w.first) <= target.lsn).length + 1
        : after.length;
  return { base, wal: after.slice(0, needed), more: after.slice(needed) };
}
