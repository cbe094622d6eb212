/** Secret files: created 0600 (never wider), read with a check of their mode. */
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { ConfigError } from "./errors.ts";

/** Writes `content` to `path` with mode 0600 atomically (temp file + fsync + rename). */
export function writeSecretFile(path: string, content: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.tmp-${process.pid}`;
  const fd = openSync(temp, "w", 0o600);
  try {
    writeSync(fd, typeof content === "string" ? Buffer.from(content) : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(temp, 0o600);
  renameSync(temp, path);
}

/** Creates the file only if it does not exist; returns true when it wrote. Never overwrites a secret. */
export function createSecretFileOnce(path: string, content: () => string | Uint8Array): boolean {
  if (existsSync(path)) return false;
  writeSecretFile(path, content());
  return true;
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
