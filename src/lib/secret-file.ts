/**
 * Secret files: created 0600 (never wider), read with a check of their mode. A create-once secret
 * (token.key, master.key) is published with link(2), so processes starting together (blue and
 * green) all end up reading the one copy that won, never each their own.
 */
import { readFileSync, statSync } from "node:fs";
import { createFileOnce, writeFileAtomic } from "./atomic-write.ts";
import { ConfigError } from "./errors.ts";

const SECRET = { mode: 0o600, dirMode: 0o700 };

/** Writes `content` to `path` with mode 0600, atomically and durably (see writeFileAtomic). */
export function writeSecretFile(path: string, content: string | Uint8Array): void {
  writeFileAtomic(path, content, SECRET);
}

/**
 * Creates the file only if it does not exist; returns true when this call's content won. Never
 * overwrites a secret: read the file afterwards (readSecretFile) for whichever content won.
 */
export function createSecretFileOnce(path: string, content: () => string | Uint8Array): boolean {
  try {
    statSync(path);
    return false; // the common case: no need to generate a key just to throw it away
  } catch {
    return createFileOnce(path, content(), SECRET);
  }
}

/** Reads a secret file, refusing one that group or others can read. */
export function readSecretFile(path: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
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
  return readFileSync(path, "utf8").trim();
}
