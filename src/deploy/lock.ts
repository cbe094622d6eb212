/**
 * One deploy at a time per machine: {data_dir}/run/deploy.lock holds the PID, the version and
 * who. A lock left by a dead process (kill -9, power loss) is detected, reported and taken over;
 * a lock held by a live process refuses the second deploy with who holds it.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { DeployError } from "../lib/errors.ts";

export interface LockOwner {
  pid: number;
  startedAt: string;
  who: string;
  version: string;
}

export interface HeldLock {
  file: string;
  /** The dead owner whose lock we took over, if any. */
  stale?: LockOwner;
  release(): void;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readOwner(file: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as LockOwner;
  } catch {
    return undefined;
  }
}

function tryCreate(file: string, owner: LockOwner): boolean {
  let fd: number;
  try {
    fd = openSync(file, "wx", 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
  try {
    writeSync(fd, `${JSON.stringify(owner)}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Takes the deploy lock or throws DEPLOY_LOCKED naming the live holder. */
export function acquireDeployLock(file: string, who: string, version: string): HeldLock {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const owner: LockOwner = { pid: process.pid, startedAt: new Date().toISOString(), who, version };
  let stale: LockOwner | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreate(file, owner)) return { file, stale, release: () => releaseIfOurs(file) };
    const holder = readOwner(file);
    if (holder && processAlive(holder.pid))
      throw new DeployError(
        "DEPLOY_LOCKED",
        `lock: another deploy is running (pid ${holder.pid}, release ${holder.version}, by ${holder.who}, since ${holder.startedAt}); the live color is untouched`,
        "wait for it to finish, then push again; `axe-appliance deploy status` shows the colors",
      );
    // Dead holder (or unreadable file): move it aside atomically so only one of two recoverers wins.
    const aside = `${file}.stale-${process.pid}`;
    try {
      renameSync(file, aside);
      rmSync(aside, { force: true });
      stale = holder ?? { pid: 0, startedAt: "unknown", who: "unknown", version: "unknown" };
    } catch {
      // someone else moved it first; try again
    }
  }
  throw new DeployError(
    "DEPLOY_LOCKED",
    `lock: could not take ${file} (another deploy keeps taking it)`,
    "try again in a few seconds",
  );
}

function releaseIfOurs(file: string): void {
  const holder = readOwner(file);
  if (holder?.pid === process.pid) rmSync(file, { force: true });
}

/** Who holds the lock now, and whether that process is alive. */
export function inspectDeployLock(file: string): (LockOwner & { alive: boolean }) | undefined {
  const holder = readOwner(file);
  return holder ? { ...holder, alive: processAlive(holder.pid) } : undefined;
}
