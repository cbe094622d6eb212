/**
 * A lock file naming its owner (PID, when, who, what), for one deploy or one backup runner at a
 * time on a machine. Taking a free lock is link(2) of a complete file, so nobody reads it half
 * written. A lock whose owner is dead (kill -9, power cut) is taken over; defends against two
 * processes taking over the same dead lock together: the one that creates the claim file named after
 * that lock's exact content replaces it (rename), the other finds it moved and sees a live owner.
 *
 * @example
 * const attempt = tryAcquireLock(join(config.paths.run, "deploy.lock"), { who: "ops@laptop", detail: "1.4.0" });
 * if (!attempt.acquired) throw new DeployError("DEPLOY_LOCKED", `held by pid ${attempt.holder.pid}`);
 * if (attempt.lock.takenOver) say(`took over the lock of dead pid ${attempt.lock.takenOver.pid}`);
 * try { ... } finally { attempt.lock.release(); }
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, fstatSync, openSync, readFileSync, renameSync, rmSync } from "node:fs";
import { z } from "zod";
import { createFileOnce, writeTempBeside } from "./atomic-write.ts";

export interface LockOwner {
  pid: number;
  /** When the owner took the lock (ISO 8601). */
  startedAt: string;
  who: string;
  /** What the owner is doing, e.g. the release a deploy installs. */
  detail: string;
}

export interface LockHolder extends LockOwner {
  /** The owner's PID names a running process (after a reboot that may be another program: the error says so). */
  alive: boolean;
  /** How long ago the owner took the lock. */
  ageMs: number;
  /** The file is not a lock we can read (torn, or not ours); its owner is unknown (pid 0). */
  unreadable?: true;
}

export interface HeldLock {
  path: string;
  owner: LockOwner;
  /** The stale owner whose lock this one replaced, so the caller can say so. */
  takenOver?: LockHolder;
  /** Removes the lock if it is still ours. */
  release(): void;
}

export type LockAttempt = { acquired: true; lock: HeldLock } | { acquired: false; holder: LockHolder };

export interface LockOptions {
  who: string;
  detail?: string;
  /** Which holders may be replaced; default: those not alive. E.g. also alive but past the longest deadline. */
  isStale?: (holder: LockHolder) => boolean;
  /** How long to keep trying while another process is taking over the same stale lock (default 5 s). */
  contentionMs?: number;
}

const LOCK_FILE = { mode: 0o600, dirMode: 0o700 };

/** Takes the lock, or says who holds it. Never waits for a live holder. */
export function tryAcquireLock(path: string, options: LockOptions): LockAttempt {
  const owner: LockOwner = {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    who: options.who,
    detail: options.detail ?? "",
  };
  const text = lockText(owner);
  const isStale = options.isStale ?? ((holder: LockHolder) => !holder.alive);
  const held = (takenOver?: LockHolder): LockAttempt => ({
    acquired: true,
    lock: { path, owner, ...(takenOver ? { takenOver } : {}), release: () => removeIfStill(path, text) },
  });
  const giveUpAt = Date.now() + (options.contentionMs ?? 5000);
  for (;;) {
    if (createFileOnce(path, text, LOCK_FILE)) return held();
    const current = readLock(path);
    if (!current) continue; // released in between: try again
    if (!isStale(current.holder)) return { acquired: false, holder: current.holder };
    const outcome = replaceIfStill(path, current.generation, text, owner);
    if (outcome === "replaced") return held(current.holder);
    if (Date.now() > giveUpAt) return { acquired: false, holder: current.holder };
    if (outcome === "busy") Bun.sleepSync(2);
  }
}

/** Who holds the lock now, or undefined when nobody does. */
export function readLockHolder(path: string): LockHolder | undefined {
  return readLock(path)?.holder;
}

/** The process exists (EPERM: it does, as another user). 0 and below name process groups, never one process. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

type Outcome = "replaced" | "moved" | "busy";

/**
 * Replaces the file at `path` with `text` if it still holds `generation`. Only the process that
 * creates `{path}.takeover-{generation}` may do so, and it re-reads `path` first: so of two
 * processes that judged the same lock stale, one replaces it and the other finds it moved.
 */
function replaceIfStill(path: string, generation: string, text: string, owner: LockOwner): Outcome {
  const claim = `${path}.takeover-${generation}`;
  const claimText = lockText(owner);
  if (!createFileOnce(claim, claimText, LOCK_FILE)) {
    const other = readLock(claim);
    if (!other || other.holder.alive) return "busy";
    // its claimer died mid-take-over: claim the claim the same way, then carry on as the claimer
    if (replaceIfStill(claim, other.generation, claimText, owner) !== "replaced") return "busy";
  }
  try {
    if (readLock(path)?.generation !== generation) return "moved";
    const temp = writeTempBeside(path, text, LOCK_FILE);
    try {
      renameSync(temp, path);
    } catch (error) {
      rmSync(temp, { force: true });
      throw error;
    }
    return "replaced";
  } finally {
    removeIfStill(claim, claimText);
  }
}

function lockText(owner: LockOwner): string {
  return `${JSON.stringify({ ...owner, nonce: randomBytes(8).toString("hex") })}\n`;
}

/** Also reads the two formats written before this module: deploy {pid, startedAt, who, version}, backup {pid, started}. */
const LockFileSchema = z.object({
  pid: z.number().int().positive(),
  startedAt: z.string().optional(),
  started: z.string().optional(),
  who: z.string().optional(),
  detail: z.string().optional(),
  version: z.string().optional(),
});

function readLock(path: string): { generation: string; holder: LockHolder } | undefined {
  let raw: Buffer;
  let modifiedMs: number;
  try {
    const fd = openSync(path, "r");
    try {
      modifiedMs = fstatSync(fd).mtimeMs;
      raw = readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const generation = createHash("sha256").update(raw).digest("hex").slice(0, 16);
  return { generation, holder: describeHolder(raw, modifiedMs) };
}

function describeHolder(raw: Buffer, modifiedMs: number): LockHolder {
  const now = Date.now();
  let parsed: z.infer<typeof LockFileSchema> | undefined;
  try {
    parsed = LockFileSchema.parse(JSON.parse(raw.toString("utf8")));
  } catch {
    parsed = undefined;
  }
  if (!parsed) {
    const startedAt = new Date(modifiedMs).toISOString();
    return { pid: 0, startedAt, who: "unknown", detail: "", alive: false, ageMs: now - modifiedMs, unreadable: true };
  }
  const written = parsed.startedAt ?? parsed.started;
  const startedMs = written && !Number.isNaN(Date.parse(written)) ? Date.parse(written) : modifiedMs;
  return {
    pid: parsed.pid,
    startedAt: written ?? new Date(modifiedMs).toISOString(),
    who: parsed.who ?? "unknown",
    detail: parsed.detail ?? parsed.version ?? "",
    alive: isAlive(parsed.pid),
    ageMs: now - startedMs,
  };
}

function removeIfStill(path: string, text: string): void {
  try {
    if (readFileSync(path, "utf8") === text) rmSync(path, { force: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}
