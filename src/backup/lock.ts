/**
 * One backup runner at a time on this machine: a lock file naming our PID (src/lib/lock-file.ts).
 * While we hold it, no other runner of ours is alive or it is hung past the longest a run may take
 * (every call has a deadline, so a run cannot legitimately last longer), so a restic lock left in a
 * repository by a dead restic may be removed with `restic unlock` (which keeps live, refreshed
 * locks). We never pass `--remove-all`. A take-over is never silent: the caller reports it.
 *
 * @example
 * const { lock, warnings } = takeRunnerLock(ctx); // warnings: a take-over, said out loud
 * try { ... } finally { lock.release(); }
 */
import { join } from "node:path";
import { BackupError } from "../lib/errors.ts";
import { type HeldLock, type LockHolder, readLockHolder, tryAcquireLock } from "../lib/lock-file.ts";
import type { BackupContext } from "./context.ts";
import { runBudgetSeconds } from "./deadlines.ts";
import { formatAge, readStatus } from "./status.ts";

const hours = (ms: number) => formatAge(ms / 3_600_000);

export function acquireRunnerLock(path: string, budgetMs: number): HeldLock {
  const attempt = tryAcquireLock(path, {
    who: "backup runner",
    isStale: (holder) => !holder.alive || holder.ageMs > budgetMs,
  });
  if (attempt.acquired) return attempt.lock;
  const holder = attempt.holder;
  if (!holder.alive)
    throw new BackupError("BACKUP_LOCK", `could not take the runner lock ${path}`, "run the backup again");
  throw new BackupError(
    "BACKUP_RUNNING",
    `another backup runner (PID ${holder.pid}, started ${holder.startedAt}, ${hours(holder.ageMs)} ago) is running`,
    `wait for it to finish (a run may take up to ${hours(budgetMs)}); if PID ${holder.pid} is not axe-appliance, remove ${path}`,
  );
}

/** The line a run prints when it took the lock over. */
export function takeOverNote(holder: LockHolder, budgetMs: number): string {
  const what = holder.alive
    ? `still alive after ${hours(holder.ageMs)}, past the ${hours(budgetMs)} a run may take: it is hung (stop it: kill ${holder.pid})`
    : `gone (started ${hours(holder.ageMs)} ago)`;
  return `took over the runner lock of PID ${holder.pid}: ${what}`;
}

/** For `backup status`: a live runner past the budget is a problem; undefined otherwise. */
export function hungRunner(path: string, budgetMs: number): string | undefined {
  const holder = readLockHolder(path);
  if (!holder?.alive || holder.ageMs <= budgetMs) return undefined;
  return `backup runner PID ${holder.pid} has run for ${hours(holder.ageMs)}, past the ${hours(budgetMs)} a run may take: it is hung; the next run takes over its lock (stop it: kill ${holder.pid})`;
}

export function runnerLockPath(ctx: BackupContext): string {
  return join(ctx.config.paths.run, "backup.lock");
}

/** The longest a run may take on this machine, from its deadlines and the local repository's size. */
export function runBudgetMs(ctx: BackupContext): number {
  let size: number | undefined;
  try {
    size = readStatus(ctx.stateDir).tiers.local?.size;
  } catch {
    size = undefined; // an unreadable status file: the floors alone
  }
  return runBudgetSeconds(ctx.settings, size) * 1000;
}

/** Takes the runner lock for `ctx`; a take-over comes back as a warning for the operator. */
export function takeRunnerLock(ctx: BackupContext): { lock: HeldLock; warnings: string[] } {
  const budget = runBudgetMs(ctx);
  const lock = acquireRunnerLock(runnerLockPath(ctx), budget);
  return { lock, warnings: lock.takenOver ? [takeOverNote(lock.takenOver, budget)] : [] };
}
