/**
 * Retention: `restic forget --prune` with the tier's keep policy, for this host's snapshots only.
 * Callers run it only after that tier's backup succeeded, never on a failed run.
 */
import { BackupError } from "../lib/errors.ts";
import type { Keep } from "./context.ts";
import type { Repo, Restic } from "./restic.ts";

/** The forget arguments for a policy; undefined when the policy keeps everything. */
export function forgetArgs(keep: Keep, host: string): string[] | undefined {
  const flags: string[] = [];
  for (const [name, value] of Object.entries(keep)) if (value > 0) flags.push(`--keep-${name}`, String(value));
  if (!flags.length) return undefined;
  return ["forget", "--prune", "--host", host, ...flags];
}

export async function applyRetention(restic: Restic, repo: Repo, keep: Keep, host: string): Promise<void> {
  const args = forgetArgs(keep, host);
  if (args) await restic.must(repo, args, "applying retention (forget --prune)");
}

/**
 * Removes locks left by restic processes that are gone (`restic unlock` without --remove-all
 * only removes stale ones). Call only while holding the runner lock: no runner of ours is alive.
 */
export async function removeStaleLocks(restic: Restic, repo: Repo): Promise<void> {
  await restic.must(repo, ["unlock"], "removing stale locks");
}

/**
 * Runs `work`; when restic finds the repository locked, removes stale locks and tries once more.
 * Costs nothing on a normal day. A live lock (another machine, a restic run by hand) survives
 * `restic unlock`, and the retry fails with restic's own message.
 */
export async function retryAfterStaleLocks<T>(restic: Restic, repo: Repo, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof BackupError && error.code === "REPO_LOCKED")) throw error;
  }
  await removeStaleLocks(restic, repo);
  return work();
}

/** Retention once the new snapshots are safe: a failure says so, and the next run tries again. */
export async function retentionAfterSave(restic: Restic, repo: Repo, keep: Keep, host: string): Promise<void> {
  try {
    await retryAfterStaleLocks(restic, repo, () => applyRetention(restic, repo, keep, host));
  } catch (error) {
    if (!(error instanceof BackupError)) throw error;
    throw new BackupError(
      error.code,
      `${error.message}; the new snapshots are saved, nothing was forgotten, the next run applies retention`,
      error.hint,
    );
  }
}
