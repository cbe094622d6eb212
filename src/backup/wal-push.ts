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
import { mkdirSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import type { Config } from "../config/load.ts";
import { createFileOnceFrom, writeFileAtomic } from "../lib/atomic-write.ts";
import { BackupError } from "../lib/errors.ts";

/** WAL segments, timeline history files, backup labels and partial segments, as Postgres names them. */
export const WAL_NAME = /^([0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$/;

const WalStateSchema = z.object({
  lastPush: z.object({ time: z.string(), segment: z.string() }).optional(),
  failing: z.object({ since: z.string(), segment: z.string(), error: z.string() }).optional(),
});
type WalState = z.infer<typeof WalStateSchema>;

export function walSpool(config: Config): string {
  const spool = config.appliance.backup.wal.spool;
  return isAbsolute(spool) ? spool : join(config.paths.data, spool);
}

const statePath = (stateDir: string) => join(stateDir, "wal.json");

export function readWalState(stateDir: string): WalState {
  try {
    const parsed = WalStateSchema.safeParse(JSON.parse(readFileSync(statePath(stateDir), "utf8")));
    if (parsed.success) return parsed.data;
  } catch {
    // none yet, or unreadable: start over
  }
  return {};
}

function writeWalState(stateDir: string, state: WalState): void {
  writeFileAtomic(statePath(stateDir), `${JSON.stringify(state)}\n`, { mode: 0o600 });
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
    const published = await createFileOnceFrom(target, { mode: 0o600 }, async (append) => {
      for await (const chunk of Bun.file(resolve(source)).stream()) append(chunk);
    });
    const outcome = published ? "archived" : await sameOrRefuse(resolve(source), target, name);
    writeWalState(config.paths.state, { lastPush: { time: new Date().toISOString(), segment: name } });
    return outcome;
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === "ENOSPC"
        ? "no space left on device"
        : error instanceof BackupError
          ? error.message
          : (error as Error).message;
    const state = readWalState(config.paths.state);
    writeWalStateQuietly(config.paths.state, {
      ...state,
      failing: { since: state.failing?.since ?? new Date().toISOString(), segment: name, error: reason },
    });
    if (error instanceof BackupError) throw error;
    throw new BackupError(
      "WAL_PUSH_FAILED",
      `wal-push ${name}: ${reason}; Postgres keeps the segment and tries again`,
      `free space or fix ${spool}; \`axe-appliance backup status\` shows when archiving works again`,
    );
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

/** Recording a failure must not hide it (the state directory may be on the full disk too). */
function writeWalStateQuietly(stateDir: string, state: WalState): void {
  try {
    writeWalState(stateDir, state);
  } catch {
    // the exit code still tells Postgres; status shows the age of the last push instead
  }
}

/** For `backup status`: archiving that is failing now, as a problem line. */
export function walProblem(stateDir: string): string | undefined {
  const { failing } = readWalState(stateDir);
  if (!failing) return undefined;
  return `WAL archiving is failing since ${failing.since.slice(0, 16)} (segment ${failing.segment}): ${failing.error}; Postgres keeps the segments and retries`;
}
