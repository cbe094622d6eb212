/**
 * The append-only deploy journal, {data_dir}/state/deploy-journal.jsonl: one JSON line per
 * event (a deploy or rollback starting, each step's outcome and duration, the end). Lines are
 * appended with O_APPEND and fsynced, never rewritten; `deploy history` reads them back.
 */
import { appendLine, readLines } from "../lib/line-file.ts";

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
    appendLine(this.file, JSON.stringify(line), { mode: 0o600 });
    return line;
  }

  /** Every entry, oldest first; a torn last line (power loss mid-write) is skipped. */
  read(): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (const { line } of readLines(this.file)) {
      try {
        out.push(JSON.parse(line) as JournalEntry);
      } catch {
        // not JSON: a line someone edited; the entries around it still count
      }
    }
    return out;
  }
}
