/**
 * Tier 1: the local repository receives the database dump, then the config and state
 * directories (secrets included: restic encrypts them), then retention.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { isAbsolute, join, relative } from "node:path";
import type { DatabaseTarget } from "../../db/connect.ts";
import { log } from "../../lib/log.ts";
import { baseBackup } from "../basebackup.ts";
import type { BackupContext } from "../context.ts";
import { dumpDatabase, summaryOf } from "../dump.ts";
import { recordFigures, recordFileFigures } from "../figures.ts";
import { hashFiles, stableFigures } from "../files-drill.ts";
import { createProgress } from "../progress.ts";
import { resticFailure } from "../restic.ts";
import { retentionAfterSave, retryAfterStaleLocks } from "../retention.ts";
import { recordSnapshot, updateTier } from "../status.ts";
import { FILES_TAG, RUN_TAG_PREFIX } from "../tags.ts";
import type { TierResult } from "./types.ts";

export async function runLocalTier(
  ctx: BackupContext,
  target: DatabaseTarget,
  options: { retention?: boolean } = {},
): Promise<TierResult> {
  const restic = ctx.restic();
  const repo = ctx.local;
  const step = stepTimer();
  const dumpProgress = createProgress("database dump");
  const runId = randomBytes(6).toString("hex");
  const started = new Date().toISOString(); // the dump's data is as of its start, like restic's snapshot time
  // Sign the audit chains' heads first: the dump holds them, and the state snapshot carries the anchor.
  await (await import("../../frame/store/audit-anchoring.ts"))
    .anchorForBackup(ctx.config, target)
    .catch((error: unknown) => log.warn("audit anchor not signed before the backup", { error: String(error) }));
  const dump = await retryAfterStaleLocks(restic, repo, () =>
    dumpDatabase({ restic, repo, target, host: ctx.host, runId, onLine: dumpProgress.line }),
  ).finally(dumpProgress.done);
  // Only after the dump is a snapshot: a failed run leaves no trace in the repository or the figures.
  recordFigures(ctx.stateDir, runId, dump.figures);
  step("database dump");
  const filesProgress = createProgress("config, state");
  const paths = filePaths(ctx);
  const hashed = hashFiles(paths); // the drill proves config and secrets against these
  const files = await retryAfterStaleLocks(restic, repo, async () => {
    const result = await restic.run(
      repo,
      ["backup", "--json", "--host", ctx.host, "--tag", `${FILES_TAG},${RUN_TAG_PREFIX}${runId}`, ...paths],
      { onLine: filesProgress.line },
    );
    if (result.code !== 0 && result.code !== 3) throw resticFailure(repo, "backing up config and state", result);
    return result;
  }).finally(filesProgress.done);
  const filesSummary = summaryOf(files);
  recordFileFigures(ctx.stateDir, runId, stableFigures(hashed));
  step("config and state");
  const added = dump.summary.data_added + filesSummary.data_added;
  recordSnapshot(ctx.stateDir, "local", {
    time: started,
    id: filesSummary.snapshot_id.slice(0, 8), // restic >= 0.17 reports the whole id
    dumpId: dump.summary.snapshot_id.slice(0, 8),
    bytesAdded: added,
  });
  // With WAL archiving on, the physical base backup that point-in-time restore starts from.
  const base = ctx.settings.wal.enabled ? await takeBaseBackup(ctx, target, runId) : undefined;
  const retention = options.retention === false ? {} : await retentionAfterSave(ctx, repo, ctx.settings.local.keep);
  step("retention");
  const size = directorySize(repo.repository);
  updateTier(ctx.stateDir, "local", (t) => ({ ...t, size }));
  const partialNote = files.code === 3 ? " (some files could not be read: see restic's warnings above)" : "";
  return {
    tier: "local",
    outcome: "ok",
    snapshot: dump.summary.snapshot_id.slice(0, 8),
    bytesAdded: added,
    message: `local: database snapshot ${dump.summary.snapshot_id.slice(0, 8)} (${dump.figures.length} tables), files snapshot ${filesSummary.snapshot_id.slice(0, 8)}, ${added} bytes added${partialNote}${base ? `, base backup ${base}` : ""}${retention.note ? `; ${retention.note}` : ""}`,
    warning: retention.warning,
  };
}

/** The config directory without the data directory inside it, plus state and an outside secrets dir. */
export function filePaths(ctx: BackupContext): string[] {
  const { dir } = ctx.config;
  const { data, secrets, state } = ctx.config.paths;
  const paths = inside(data, dir) ? entriesAround(dir, data) : [dir];
  paths.push(state);
  if (!inside(secrets, dir)) paths.push(secrets);
  return [...new Set(paths)];
}

function inside(child: string, parent: string): boolean {
  const r = relative(parent, child);
  return r === "" || (!r.startsWith("..") && !isAbsolute(r));
}

/** Every entry under `dir` except `skip` (the data directory, whose state/ is listed on its own). */
function entriesAround(dir: string, skip: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (p === skip) continue;
    if (inside(skip, p)) out.push(...entriesAround(p, skip));
    else out.push(p);
  }
  return out;
}

/** Logs (at debug) how long each step took, for an operator asking where the time goes. */
function stepTimer(): (name: string) => void {
  let last = performance.now();
  return (name) => {
    const now = performance.now();
    log.debug("backup step done", { tier: "local", step: name, seconds: Math.round(now - last) / 1000 });
    last = now;
  };
}

/** Bytes under a local repository (cheaper than `restic stats` for a local tier). */
export function directorySize(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}

async function takeBaseBackup(ctx: BackupContext, target: DatabaseTarget, runId: string): Promise<string> {
  const progress = createProgress("base backup");
  const restic = ctx.restic();
  const summary = await retryAfterStaleLocks(restic, ctx.local, () =>
    baseBackup({ restic, repo: ctx.local, target, host: ctx.host, runId, onLine: progress.line }),
  ).finally(progress.done);
  return summary.snapshot_id.slice(0, 8);
}
