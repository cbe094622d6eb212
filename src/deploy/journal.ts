/**
 * The append-only deploy journal, {data_dir}/state/deploy-journal.jsonl: one JSON line per
 * event (a deploy or rollback starting, each step's outcome and duration, the end). Lines are
 * appended with O_APPEND and fsynced, never rewritten; `deploy history` reads them back.
 */
import { z } from "zod";
import { parseJsonOrUndefined } from "../lib/json.ts";
import { appendLine, readLines } from "../lib/line-file.ts";

/** The fields every line has; the rest (step, ok, error, release ...) pass through to `deploy history`. */
const JournalEntrySchema = z.looseObject({
  time: z.string(),
  /** One id per deploy or rollback; every line of it carries the same id. */
  id: z.string(),
  kind: z.enum(["begin", "step", "end"]),
  action: z.enum(["deploy", "rollback"]),
  who: z.string(),
});
export type JournalEntry = z.infer<typeof JournalEntrySchema>;

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
      const entry = JournalEntrySchema.safeParse(parseJsonOrUndefined(line));
      if (entry.success) out.push(entry.data); // else a line someone edited: the entries around it still count
    }
    return out;
  }
}
