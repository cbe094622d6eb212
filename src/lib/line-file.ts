/**
 * Append-only files of lines (journals, signed anchors): each line is appended with O_APPEND in
 * one write and fsynced before the call returns, never rewritten. A crash mid-write leaves a torn
 * last line with no newline; readers skip it and the next append starts on a fresh line.
 *
 * @example
 * appendLine(join(stateDir, "audit-anchors.jsonl"), jws, { mode: 0o600 });
 * for (const { line, number } of readLines(file)) ...
 */
import {
  closeSync,
  existsSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";

/**
 * Appends `line` (which must not hold a newline) and makes it durable. `owner`: the account a file
 * this call creates is given to (root appending to a file a color appends to as well).
 */
export function appendLine(
  path: string,
  line: string,
  options: { mode: number; owner?: { uid: number; gid: number } },
): void {
  if (line.includes("\n")) throw new Error("appendLine: a line must not contain a newline");
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(path, "a+", options.mode);
  try {
    if (options.owner && fstatSync(fd).size === 0) fchownSync(fd, options.owner.uid, options.owner.gid);
    writeSync(fd, `${endsTorn(fd) ? "\n" : ""}${line}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Every complete line with its 1-based number; blank lines and a torn last line are left out. */
export function readLines(path: string): Array<{ line: string; number: number }> {
  if (!existsSync(path)) return [];
  const parts = readFileSync(path, "utf8").split("\n");
  parts.pop(); // after the last newline: empty, or a line torn by a crash
  return parts.map((line, i) => ({ line, number: i + 1 })).filter((l) => l.line.trim() !== "");
}

/** The last complete line, read from the end (the file may be long); undefined when there is none. */
export function lastLine(path: string, maxLineBytes = 65_536): string | undefined {
  if (!existsSync(path)) return undefined;
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, maxLineBytes);
    const tail = Buffer.alloc(length);
    readSync(fd, tail, 0, length, size - length);
    const lines = tail.toString("utf8").split("\n");
    lines.pop();
    const last = lines.pop();
    return last && (lines.length > 0 || length === size) ? last : undefined;
  } finally {
    closeSync(fd);
  }
}

/** True when the file's last byte is not a newline (a crash cut the previous line short). */
function endsTorn(fd: number): boolean {
  const size = fstatSync(fd).size;
  if (size === 0) return false;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  return last[0] !== 0x0a;
}
