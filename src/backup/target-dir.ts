/**
 * The directory a restore writes into as root (`--to-dir DIR`, `--to-cluster DIR` and its DIR-wal):
 * named by the operator, maybe in a sticky directory every account writes in (/tmp), where another
 * account can take the name first, as a link or as a directory of its own, to catch what root
 * writes. It must be absent (then made here, never through a link) or a real directory of an
 * allowed owner; once it is root's or the cluster account's, nobody else can swap it.
 *
 * @example
 * makeOwnDirectory(dir, { mode: 0o700, owners: [0], code: "RESTORE_TARGET_UNSAFE" });
 */
import { lstatSync, mkdirSync, type Stats } from "node:fs";
import { BackupError } from "../lib/errors.ts";

export interface OwnDirectory {
  /** Its mode when made here. */
  mode: number;
  /** The uids it may belong to. */
  owners: number[];
  /** Refuse one that group or others may enter (what is restored into it must stay root's). */
  private?: boolean;
  /** The error's code. */
  code: string;
}

/** Refuses `path` when it is there and is not a real directory of an allowed owner (and, if asked, 0700). */
export function assertOwnDirectory(path: string, options: OwnDirectory): void {
  let stat: Stats;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  const why = stat.isSymbolicLink()
    ? "is a symbolic link"
    : !stat.isDirectory()
      ? "is not a directory"
      : !options.owners.includes(stat.uid)
        ? `belongs to uid ${stat.uid}, not to ${options.owners.map((o) => (o === 0 ? "root" : `uid ${o}`)).join(" or ")}`
        : undefined;
  if (why)
    throw new BackupError(
      options.code,
      `${path} ${why}; a restore never writes through another account's path`,
      "nothing was changed; another account may have made it to catch the restore: remove it, or restore into a new directory under one only root can write (e.g. /opt/axe/data/restored)",
    );
  if (options.private && stat.mode & 0o077)
    throw new BackupError(
      options.code,
      `${path} has mode ${(stat.mode & 0o777).toString(8)}: other accounts could read what is restored into it (the database dump, the secrets)`,
      `chmod 700 ${path}, or name a new directory (it is made 0700)`,
    );
}

/** mkdir (a name taken meanwhile is EEXIST, never followed), then the same check. */
export function makeOwnDirectory(path: string, options: OwnDirectory): void {
  try {
    mkdirSync(path, { mode: options.mode });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  assertOwnDirectory(path, options);
}
