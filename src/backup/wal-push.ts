/**
 * `backup wal-push %p %f`: Postgres' archive_command. Copies one WAL segment (or history or backup
 * label file) into the local spool and returns only once it is durable: written to a temp file,
 * fsynced, linked in under its name, the directory fsynced. A kill -9 halfway leaves nothing under
 * the segment's name; a repeat of a segment already there with the same bytes succeeds (Postgres
 * retries after a crash); other bytes under the same name are refused, never overwritten. Any
 * failure exits non-zero, so Postgres keeps the segment and tries again; the failure is recorded
 * for `backup status` until a push succeeds.
 *
 * @example
 * archive_command = '/opt/axe/bin/axe-appliance backup wal-push "%p" "%f" --config /opt/axe/config'
 */
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Config } from "../config/load.ts";
import { walSpool } from "../db/archiving.ts";
import { createFileOnceFrom, writeFileAtomic } from "../lib/atomic-write.ts";
import { BackupError } from "../lib/errors.ts";
import { PUSH_STATE, type PushState, readPushState, WAL_NAME } from "./spool.ts";

/** The state lives in the spool: wal-push runs as the account Postgres runs as, which can write nothing else of ours. */
function writePushState(spool: string, state: PushState): void {
  writeFileAtomic(join(spool, PUSH_STATE), `${JSON.stringify(state)}\n`, { mode: 0o600 });
}

/** Archives `source` (relative to the cluster's data directory, our working directory) as `name`. */
export async function walPush(config: Config, source: string, name: string): Promise<"archived" | "already there"> {
  if (!WAL_NAME.test(name))
    throw new BackupError(
      "WAL_NAME",
      `wal-push: '${name}' is not a WAL file name`,
      'archive_command must pass "%p" "%f" in that order',
    );
  const spool = walSpool(config);
  const target = join(spool, name);
  try {
    mkdirSync(spool, { recursive: true, mode: 0o700 });
    removeDeadTemps(spool, name);
    const published = await createFileOnceFrom(target, { mode: 0o600 }, async (append) => {
      for await (const chunk of Bun.file(resolve(source)).stream()) append(chunk);
    });
    const outcome = published ? "archived" : await sameOrRefuse(resolve(source), target, name);
    writePushStateQuietly(spool, { lastPush: { time: new Date().toISOString(), segment: name } });
    return outcome;
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === "ENOSPC"
        ? "no space left on device"
        : error instanceof BackupError
          ? error.message
          : (error as Error).message;
    const state = readPushState(spool);
    writePushStateQuietly(spool, {
      ...state,
      failing: { since: state.failing?.since ?? new Date().toISOString(), segment: name, error: reason },
    });
    if (error instanceof BackupError) throw error;
    throw new BackupError(
      "WAL_PUSH_FAILED",
      `wal-push ${name}: ${reason}; Postgres keeps the segment and tries again`,
      `free space or fix ${spool} (it must belong to the account Postgres runs as); \`axe-appliance backup status\` shows when archiving works again`,
    );
  }
}

/** A temp file of a push that cannot still be running (none is after a day) lasts this long. */
const DEAD_TEMP_MS = 24 * 3600_000;

/**
 * Removes what pushes killed halfway (kill -9, a crash) left: every temp file of `name` (Postgres runs
 * one archive_command at a time and retries the segment that failed, so none of them is in use), and
 * any other temp file older than a day. A file in use is never one of them; lstat and unlink follow no link.
 */
function removeDeadTemps(spool: string, name: string): void {
  const temp = /^\.(.+)\.[0-9a-f]{12}\.tmp$/;
  for (const entry of readdirSync(spool)) {
    const m = temp.exec(entry);
    if (!m) continue;
    const path = join(spool, entry);
    try {
      if (m[1] === name || Date.now() - lstatSync(path).mtimeMs > DEAD_TEMP_MS) rmSync(path, { force: true });
    } catch {
      // gone meanwhile
    }
  }
}

/** A segment already in the spool: the same bytes are a harmless repeat, others are refused. */
async function sameOrRefuse(source: string, target: string, name: string): Promise<"already there"> {
  const digest = async (path: string) => {
    const hash = createHash("sha256");
    for await (const chunk of Bun.file(path).stream()) hash.update(chunk);
    return hash.digest("hex");
  };
  if ((await digest(source)) === (await digest(target))) return "already there";
  throw new BackupError(
    "WAL_CONFLICT",
    `wal-push: ${name} is already in the spool with other content; it was not overwritten`,
    "two clusters archive into one spool, or the cluster was re-created: give each cluster its own backup.wal.spool",
  );
}

/** Recording the outcome must not change it (a full spool cannot take the state file either; status reads its free space). */
function writePushStateQuietly(spool: string, state: PushState): void {
  try {
    writePushState(spool, state);
  } catch {
    // the exit code still tells Postgres
  }
}
