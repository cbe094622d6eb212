/**
 * Root's side of the embedded cluster's files. Running as root, the cluster directory belongs to
 * the Postgres account (`postgres`, or the deploy user on macOS), which can plant links there; root
 * never writes, chmods or chowns through them. Writes inside the cluster directory run as that
 * account (a child with its uid, so they reach only what the account could reach anyway); reads
 * open with O_NOFOLLOW and check the owner; a path that lstat shows is a link, or is owned by
 * someone else, is refused by name. The socket directory lives outside, in a parent only root
 * can write (decision 45).
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  type Stats,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { DatabaseError } from "../lib/errors.ts";
import { describeExit, ProgramStartError, runProgram } from "../lib/program.ts";

/** The OS account Postgres runs as; when it is this process's own, there is no boundary to keep. */
export interface ClusterAccount {
  name: string;
  uid: number;
  gid: number;
}

const SOCKET_PATH_MAX = 100; // macOS allows 104 bytes for a socket path, Linux 108

const us = () => process.getuid?.() ?? 0;

function unsafe(path: string, why: string, account: ClusterAccount, hint?: string): DatabaseError {
  return new DatabaseError(
    "EMBEDDED_UNSAFE_PATH",
    `${path} ${why}; the embedded cluster refuses to use it (running as uid ${us()}, Postgres as '${account.name}')`,
    hint ??
      `nothing was changed; find out who made it (only '${account.name}' or root could), remove it, and run again`,
  );
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Refuses `path` when it is a link, not of `kind`, owned by none of `owners`, or (a file) has more
 * than one name: a hard link to root's file would otherwise pass for the account's own.
 * Returns false when it does not exist.
 */
export function checkOwned(path: string, kind: "file" | "dir", owners: number[], account: ClusterAccount): boolean {
  const stat = lstatOrUndefined(path);
  if (!stat) return false;
  assertStat(path, stat, kind, owners, account);
  return true;
}

function assertStat(path: string, stat: Stats, kind: "file" | "dir", owners: number[], account: ClusterAccount): void {
  if (stat.isSymbolicLink()) throw unsafe(path, "is a symbolic link", account);
  if (kind === "dir" ? !stat.isDirectory() : !stat.isFile())
    throw unsafe(path, `is not a ${kind === "dir" ? "directory" : "regular file"}`, account);
  if (!owners.includes(stat.uid))
    throw unsafe(path, `is owned by uid ${stat.uid}, expected ${owners.map((o) => `uid ${o}`).join(" or ")}`, account);
  if (kind === "file" && stat.nlink > 1) throw unsafe(path, `has ${stat.nlink} hard links`, account);
}

/** Reads a file that must belong to one of `owners`, without following a link at its last step. */
export function readOwnedFile(path: string, owners: number[], account: ClusterAccount): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "EMLINK") throw unsafe(path, "is a symbolic link", account);
    throw new DatabaseError("EMBEDDED_POSTGRES", `cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    assertStat(path, fstatSync(fd), "file", owners, account);
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

/** A short script as the account has no reason to run longer; a hung one must not hang serve. */
const SCRIPT_DEADLINE_MS = 30_000;

/**
 * Runs a short /bin/sh script as the account (as ourselves when it is ours). `$1...` are `args`;
 * `input` goes to its stdin. Throws a DatabaseError naming `what` when it fails.
 */
export async function runAsAccount(
  account: ClusterAccount,
  what: string,
  script: string,
  args: string[],
  input = "",
): Promise<void> {
  const failed = (why: string) =>
    new DatabaseError(
      "EMBEDDED_POSTGRES",
      `could not ${what} as '${account.name}': ${why}`,
      `'${account.name}' must own the cluster directory; check it with ls -la`,
    );
  const exit = await runProgram(["/bin/sh", "-c", `umask 077 && ${script}`, "sh", ...args], {
    runAs: account,
    stdin: new Blob([input]),
    deadlineMs: SCRIPT_DEADLINE_MS,
    deadlineSignal: "SIGTERM",
  }).catch((error: unknown) => {
    throw failed(error instanceof ProgramStartError ? error.reason : (error as Error).message);
  });
  if (exit.code !== 0) throw failed(exit.stderr.trim() || describeExit(exit, SCRIPT_DEADLINE_MS));
}

/** Writes a whole file as the account: a temp file of this writer's own, then rename, with its permissions only. */
export function writeAsAccount(account: ClusterAccount, path: string, content: string): Promise<void> {
  return runAsAccount(account, `write ${path}`, 'cat > "$1.tmp-$$" && mv -f "$1.tmp-$$" "$1"', [path], content);
}

/**
 * The directory for the cluster's Unix socket, outside the cluster directory: `{dir}-socket`
 * beside it, or `/tmp/axe-pg-{hash}/socket` when that path would be too long. Every step above
 * the socket directory is root's (ours); the socket directory itself is the account's, mode 0700.
 */
export function prepareSocketDir(dir: string, port: number, account: ClusterAccount): string {
  const beside = join(dirname(dir), `${basename(dir)}-socket`);
  if (join(beside, `.s.PGSQL.${port}`).length <= SOCKET_PATH_MAX) {
    makeAccountDir(beside, account);
    return beside;
  }
  const parent = join("/tmp", `axe-pg-${createHash("sha256").update(dir).digest("hex").slice(0, 12)}`);
  try {
    mkdirSync(parent, { mode: 0o711 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  // Anyone can create a name in /tmp first: use only a directory that we (root) made.
  const stat = lstatSync(parent);
  if (stat.isSymbolicLink() || !stat.isDirectory() || stat.uid !== us() || stat.mode & 0o022)
    throw unsafe(
      parent,
      `exists and was not made by this appliance (${stat.isSymbolicLink() ? "a symbolic link" : `uid ${stat.uid}, mode ${(stat.mode & 0o7777).toString(8)}`})`,
      account,
    );
  const socketDir = join(parent, "socket");
  makeAccountDir(socketDir, account);
  return socketDir;
}

/**
 * A directory of the account's in a path that is root's all the way up (the WAL spool, which
 * Postgres' archive_command fills as the account): made by us and handed over, or already its, 0700.
 */
export function prepareAccountDir(path: string, account: ClusterAccount): void {
  assertRootsPath(dirname(path), account);
  makeAccountDir(path, account);
}

/** mkdir, then hand a directory we just made to the account; an existing one must already be its, 0700. */
function makeAccountDir(path: string, account: ClusterAccount): void {
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const stat = lstatSync(path);
  assertStat(path, stat, "dir", [account.uid, us()], account);
  if (stat.mode & 0o077) throw unsafe(path, `has mode ${(stat.mode & 0o777).toString(8)}, expected 700`, account);
  // Ours, in a parent only we can write (or a sticky one): nobody can swap it before the chown.
  if (stat.uid !== account.uid) lchownSync(path, account.uid, account.gid);
}

/**
 * Running as root for another account: every directory from `dir` up to / must be root's and
 * writable by nobody else (sticky directories such as /tmp aside), or that account could swap a
 * step of the path between our check and our use.
 */
export function assertRootsPath(dir: string, account: ClusterAccount): void {
  if (account.uid === us()) return;
  for (let step = realpathSync(dir); ; step = dirname(step)) {
    const stat = lstatSync(step);
    const writableByOthers = stat.mode & 0o022 && !(stat.mode & 0o1000);
    if (stat.uid !== 0 || writableByOthers)
      throw unsafe(
        step,
        `${step === dir ? "" : `(on the way to ${dir}) `}is ${stat.uid !== 0 ? `owned by uid ${stat.uid}` : `writable by others (mode ${(stat.mode & 0o7777).toString(8)})`}, so another account could replace what lies below it`,
        account,
        `make it root's and writable by root only (chown root ${step}; chmod go-w ${step}), or put data_dir under such a directory`,
      );
    if (step === dirname(step)) return;
  }
}
