/**
 * Writing a file so that readers see the old content or the new, never a mix, and the new survives
 * a power cut once the call returns: a temp file beside the target (created O_EXCL under a random
 * name, so a link planted there is never followed), fsync, rename over the target, fsync the
 * directory. The mode is the caller's (0600 for secrets), set on the descriptor, whatever the umask.
 *
 * @example
 * writeFileAtomic(join(stateDir, "backup.json"), `${JSON.stringify(status)}\n`, { mode: 0o600 });
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

export interface AtomicWriteOptions {
  /** The file's mode (e.g. 0o600 for a secret, 0o644 for a unit file). */
  mode: number;
  /** Mode of the directories created on the way; 0o700 unless said. */
  dirMode?: number;
  /** The file's owner, set before it is published (root writing a file another account reads). */
  owner?: { uid: number; gid: number };
}

/** Replaces `path` with `content` atomically and durably. A link at `path` is replaced, never followed. */
export function writeFileAtomic(path: string, content: string | Uint8Array, options: AtomicWriteOptions): void {
  const temp = writeTempBeside(path, content, options);
  try {
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  fsyncDirectory(dirname(path));
}

/**
 * Publishes `content` at `path` only if nothing is there yet (link(2) of a complete temp file, so
 * a reader never sees it half written). Returns false, writing nothing, when `path` exists.
 */
export function createFileOnce(path: string, content: string | Uint8Array, options: AtomicWriteOptions): boolean {
  return publishOnce(writeTempBeside(path, content, options), path);
}

/**
 * createFileOnce for content made piece by piece (an archive read from the database page by page,
 * too large to hold whole): `produce` appends; if it throws, nothing is published and it rethrows.
 */
export async function createFileOnceFrom(
  path: string,
  options: AtomicWriteOptions,
  produce: (append: (chunk: string | Uint8Array) => void) => Promise<void>,
): Promise<boolean> {
  const { fd, temp } = openTempBeside(path, options);
  try {
    await produce((chunk) => writeAll(fd, chunk));
    fsyncSync(fd);
    closeSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  return publishOnce(temp, path);
}

/** Links the complete `temp` in as `path` unless something is there (then false), and removes `temp`. */
function publishOnce(temp: string, path: string): boolean {
  try {
    linkSync(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    rmSync(temp, { force: true });
  }
  fsyncDirectory(dirname(path));
  return true;
}

/** A complete, fsynced temp file in `path`'s directory; the caller renames or links it, then removes it. */
export function writeTempBeside(path: string, content: string | Uint8Array, options: AtomicWriteOptions): string {
  const { fd, temp } = openTempBeside(path, options);
  try {
    writeAll(fd, content);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  return temp;
}

/** A new temp file beside `path` (random name, O_EXCL|O_NOFOLLOW: a planted link is never followed). */
function openTempBeside(path: string, options: AtomicWriteOptions): { fd: number; temp: string } {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: options.dirMode ?? 0o700 });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const fd = openSync(temp, flags, options.mode);
  try {
    fchmodSync(fd, options.mode); // the umask narrowed the mode given to open
    if (options.owner) fchownSync(fd, options.owner.uid, options.owner.gid);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  return { fd, temp };
}

function writeAll(fd: number, content: string | Uint8Array): void {
  const bytes = typeof content === "string" ? Buffer.from(content) : content;
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
}

/** Makes a rename or link in `dir` durable. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
