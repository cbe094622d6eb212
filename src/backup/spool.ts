/**
 * The WAL spool as everyone but wal-push sees it. The spool belongs to the account Postgres runs as
 * (archive_command runs as that account), which can therefore plant links, hard links or FIFOs in
 * it. Whoever reads it here (root, for wal-ship, status and restore) never writes into it, reads an
 * entry only through a descriptor opened with O_NOFOLLOW whose fstat shows a regular file with one
 * name owned by the spool's owner or by us, and removes entries with unlink, which never follows a
 * link. So a planted link can neither make us write somewhere nor carry a file of ours into a backup.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { BackupError } from "../lib/errors.ts";

/** WAL segments, timeline history files, backup labels and partial segments, as Postgres names them. */
export const WAL_NAME = /^([0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$/;
/** A whole segment: what wal-push needs free to archive one (initdb's default size). */
export const SEGMENT_BYTES = 16 * 1024 * 1024;
/** wal-push's own record of its last push and of a failure, kept in the spool (the one place it may write). */
export const PUSH_STATE = ".wal-push.json";

const PushStateSchema = z.object({
  lastPush: z.object({ time: z.string(), segment: z.string() }).optional(),
  failing: z.object({ since: z.string(), segment: z.string(), error: z.string() }).optional(),
});
export type PushState = z.infer<typeof PushStateSchema>;

export interface SpoolEntry {
  name: string;
  /** When wal-push published it: the segment was closed at or before this. */
  mtimeMs: number;
}

/** The WAL files in the spool, oldest name first (lstat only: nothing is opened or followed). */
export function listSpool(spool: string): SpoolEntry[] {
  let names: string[];
  try {
    names = readdirSync(spool);
  } catch {
    return [];
  }
  const entries: SpoolEntry[] = [];
  for (const name of names.filter((n) => WAL_NAME.test(n)).sort()) {
    try {
      entries.push({ name, mtimeMs: lstatSync(join(spool, name)).mtimeMs });
    } catch {
      // removed meanwhile
    }
  }
  return entries;
}

/**
 * One file of the spool's, read through a descriptor that cannot be a link, a FIFO, a directory or a
 * second name of someone else's file; refused by name otherwise (WAL_SPOOL_UNSAFE).
 */
export function readSpoolFile(spool: string, name: string): Buffer {
  const path = join(spool, name);
  const owners = [lstatSync(spool).uid, process.getuid?.() ?? 0];
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "EMLINK") throw unsafe(path, "is a symbolic link");
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw unsafe(path, "is not a regular file");
    if (!owners.includes(stat.uid)) throw unsafe(path, `is owned by uid ${stat.uid}, not by the spool's owner`);
    if (stat.nlink > 1) throw unsafe(path, `has ${stat.nlink} hard links`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

function unsafe(path: string, why: string): BackupError {
  return new BackupError(
    "WAL_SPOOL_UNSAFE",
    `${path} ${why}; it was not read, shipped or removed`,
    "wal-push never makes one: find out who did (only the account Postgres runs as, or root, can write the spool), remove it, and check that no segment is missing (`backup status`)",
  );
}

export function readPushState(spool: string): PushState {
  try {
    const parsed = PushStateSchema.safeParse(JSON.parse(readSpoolFile(spool, PUSH_STATE).toString("utf8")));
    if (parsed.success) return parsed.data;
  } catch {
    // none yet, unreadable, or not a plain file of the spool's: start over
  }
  return {};
}

/** For `backup status`: archiving that is failing now, or a spool disk too full to take the next segment. */
export function walProblem(spool: string): string | undefined {
  const { failing } = readPushState(spool);
  if (failing)
    return `WAL archiving is failing since ${failing.since.slice(0, 16)} (segment ${failing.segment}): ${failing.error}; Postgres keeps the segments and retries`;
  const free = freeBytes(spool);
  if (free !== undefined && free < SEGMENT_BYTES)
    return `WAL archiving is failing: no space left on device for the next segment in ${spool} (${(free / 1048576).toFixed(1)} MiB free, a segment needs 16 MiB); Postgres keeps the segments and retries`;
  return undefined;
}

function freeBytes(path: string): number | undefined {
  try {
    const fs = statfsSync(path);
    return fs.bavail * fs.bsize;
  } catch {
    return undefined;
  }
}
