/**
 * Secret files: created 0600 (never wider), read with a check of their mode. A create-once secret
 * (token.key, master.key) is published with link(2), so processes starting together (blue and
 * green) all end up reading the one copy that won, never each their own.
 */
import { readFileSync, statSync } from "node:fs";
import { createFileOnce, writeFileAtomic } from "./atomic-write.ts";
import { ConfigError } from "./errors.ts";

const SECRET = { mode: 0o600, dirMode: 0o700 };

/**
 * The account a secret is written for when it is not us: blue and green's keys, written by root
 * for frame.run_as (decision 79). The file is that account's before it appears under its name.
 */
export interface SecretOwner {
  uid: number;
  gid: number;
}

const secret = (owner?: SecretOwner) => (owner ? { ...SECRET, owner } : SECRET);

/** Writes `content` to `path` with mode 0600, atomically and durably (see writeFileAtomic). */
export function writeSecretFile(path: string, content: string | Uint8Array, owner?: SecretOwner): void {
  writeFileAtomic(path, content, secret(owner));
}

/**
 * Creates the file only if it does not exist; returns true when this call's content won. Never
 * overwrites a secret: read the file afterwards (readSecretFile) for whichever content won.
 */
export function createSecretFileOnce(path: string, content: () => string | Uint8Array, owner?: SecretOwner): boolean {
  try {
    statSync(path);
    return false; // the common case: no need to generate a key just to throw it away
  } catch {}
  try {
    return createFileOnce(path, content(), secret(owner));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EACCES") throw error;
    // a color running as its own account may read its secrets but not make them (decision 79)
    throw new ConfigError(
      "SECRET_MISSING",
      `${path}: secret file not found, and this account may not create it`,
      "run `sudo axe-appliance keys init` (install.sh does): it makes every key blue and green read, owned by frame.run_as",
    );
  }
}

/** Reads a secret file, refusing one that group or others can read. */
export function readSecretFile(path: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EACCES") throw unreadable(path);
    throw new ConfigError(
      "SECRET_MISSING",
      `${path}: secret file not found`,
      "create it (see `axe-appliance keys init`) or fix the path in appliance.yaml",
    );
  }
  if (mode & 0o077)
    throw new ConfigError(
      "SECRET_MODE",
      `${path}: mode ${mode.toString(8)} lets others read a secret; expected 600`,
      `chmod 600 ${path}`,
    );
  try {
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EACCES") throw error;
    throw unreadable(path);
  }
}

const unreadable = (path: string) =>
  new ConfigError(
    "SECRET_UNREADABLE",
    `${path}: this account (uid ${process.getuid?.()}) may not read it`,
    "run `sudo axe-appliance keys init`: it gives the keys blue and green read to frame.run_as (decision 79)",
  );
