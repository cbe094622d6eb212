/**
 * One deploy at a time per machine: {data_dir}/run/deploy.lock names the PID, the version and
 * who (src/lib/lock-file.ts). A lock left by a dead process (kill -9, power loss) is taken over and
 * the lock step says whose it was; a lock held by a live process refuses the second deploy with who holds it.
 */
import { DeployError } from "../lib/errors.ts";
import { type HeldLock, readLockHolder, tryAcquireLock } from "../lib/lock-file.ts";

export type { HeldLock } from "../lib/lock-file.ts";

/** Takes the deploy lock or throws DEPLOY_LOCKED naming the live holder. */
export function acquireDeployLock(file: string, who: string, version: string): HeldLock {
  const attempt = tryAcquireLock(file, { who, detail: version });
  if (attempt.acquired) return attempt.lock;
  const holder = attempt.holder;
  if (!holder.alive)
    throw new DeployError(
      "DEPLOY_LOCKED",
      `lock: could not take ${file} (another deploy is taking over the lock of dead pid ${holder.pid})`,
      "try again in a few seconds",
    );
  throw new DeployError(
    "DEPLOY_LOCKED",
    `lock: another deploy is running (pid ${holder.pid}, release ${holder.detail}, by ${holder.who}, since ${holder.startedAt}); the live color is untouched`,
    `wait for it to finish, then push again; \`axe-appliance deploy status\` shows the colors; if pid ${holder.pid} is not axe-appliance, remove ${file}`,
  );
}

/** The lock step's line in the deploy report. */
export function describeLockStep(lock: HeldLock): string {
  const dead = lock.takenOver;
  if (!dead) return `held by pid ${process.pid}`;
  if (dead.unreadable) return `took over an unreadable lock file (last written ${dead.startedAt})`;
  return `took over a stale lock of dead pid ${dead.pid} (release ${dead.detail} by ${dead.who}, since ${dead.startedAt})`;
}

export interface DeployLockStatus {
  pid: number;
  who: string;
  version: string;
  startedAt: string;
  alive: boolean;
}

/** Who holds the lock now, and whether that process is alive. */
export function inspectDeployLock(file: string): DeployLockStatus | undefined {
  const holder = readLockHolder(file);
  if (!holder) return undefined;
  const { pid, who, detail, startedAt, alive } = holder;
  return { pid, who, version: detail, startedAt, alive };
}
