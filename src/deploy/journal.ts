/**
 * The append-only deploy journal, {data_dir}/state/deploy-journal.jsonl: one JSON line per
 * event (a deploy or rollback starting, each step's outcome and duration, the end). Lines are
 * appended with O_APPEND and fsynced, never rewritten; `deploy history` reads them back.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";

export interface JournalEntry {
  time: string;
  /** One id per deploy or rollback; every line of it carries the same id. */
  id: string;
  kind: "begin" | "step" | "end";
  action: "deploy" | "rollback";
  who: string;
  [field: string]: unknown;
}

export class DeployJournal {
  constructor(readonly file: string) {}

  append(entry: Omit<JournalEntry, "time">): JournalEntry {
    const line: JournalEntry = { time: new Date().toISOString(), ...entry } as JournalEntry;
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const fd = openSync(this.file, "a+", 0o600);
    try {
      writeSync(fd, `${(endsTorn(fd) ? "\n" : "") + JSON.stringify(line)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return line;
  }

  /** Every entry, oldest first; a torn last line (power loss mid-write) is skipped. */
  read(): JournalEntry[] {
    if (!existsSync(this.file)) return [];
    const out: JournalEntry[] = [];
    for (const line of readFileSync(this.file, "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as JournalEntry);
      } catch {
        // a partial line from a crash; the next append starts on a fresh line
      }
    }
    return out;
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
