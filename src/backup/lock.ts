/**
 * One backup runner at a time on this machine: a lock file naming our PID (src/lib/lock-file.ts).
 * While we hold it, no other runner of ours is alive, so a restic lock left in a repository is
 * stale (a runner killed with -9) and `restic unlock` may remove it. We never pass `--remove-all`.
 *
 * @example
 * const lock = acquireRunnerLock(join(config.paths.run, "backup.lock"));
 * try { ... } finally { lock.release(); }
 */
import { BackupError } from "../lib/errors.ts";
import { type HeldLock, tryAcquireLock } from "../lib/lock-file.ts";

export function acquireRunnerLock(path: string): HeldLock {
  const attempt = tryAcquireLock(path, { who: "backup runner" });
  if (attempt.acquired) return attempt.lock;
  const holder = attempt.holder;
  if (!holder.alive)
    throw new BackupError("BACKUP_LOCK", `could not take the runner lock ${path}`, "run the backup again");
  throw new BackupError(
    "BACKUP_RUNNING",
    `another backup runner (PID ${holder.pid}, started ${holder.startedAt}) is running`,
    `wait for it to finish; if PID ${holder.pid} is not axe-appliance, remove ${path}`,
  );
}
