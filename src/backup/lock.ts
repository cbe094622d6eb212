/**
 * One backup runner at a time on this machine: a lock file holding our PID. While we hold it, no
 * other runner of ours is alive, so a restic lock left in a repository is stale (a runner killed
 * with -9) and `restic unlock` may remove it. We never pass `--remove-all`.
 *
 * @example
 * const lock = acquireRunnerLock(join(config.paths.run, "backup.lock"));
 * try { ... } finally { lock.release(); }
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { BackupError } from "../lib/errors.ts";

const LockFileSchema = z.object({ pid: z.number().int().positive(), started: z.string() });

export interface RunnerLock {
  path: string;
  /** The PID whose lock we replaced because it was dead, if any. */
  replacedDeadPid?: number;
  release(): void;
}

export function acquireRunnerLock(path: string): RunnerLock {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let replacedDeadPid: number | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, JSON.stringify({ pid: process.pid, started: new Date().toISOString() }));
      closeSync(fd);
      return { path, replacedDeadPid, release: () => releaseIfOurs(path) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = readHolder(path);
    if (holder && isAlive(holder.pid))
      throw new BackupError(
        "BACKUP_RUNNING",
        `another backup runner (PID ${holder.pid}, started ${holder.started}) is running`,
        `wait for it to finish; if PID ${holder.pid} is not axe-appliance, remove ${path}`,
      );
    replacedDeadPid = holder?.pid;
    rmSync(path, { force: true });
  }
  throw new BackupError("BACKUP_LOCK", `could not take the runner lock ${path}`, "run the backup again");
}

function readHolder(path: string): z.infer<typeof LockFileSchema> | undefined {
  try {
    const parsed = LockFileSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function releaseIfOurs(path: string): void {
  if (readHolder(path)?.pid === process.pid) rmSync(path, { force: true });
}
