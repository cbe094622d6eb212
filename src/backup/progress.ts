/**
 * Progress of a restic run: a bar on a terminal, JSON lines (at most one every few seconds)
 * otherwise. Fed with restic's `--json` status lines.
 */
import { z } from "zod";
import { log } from "../lib/log.ts";
import { formatBytes } from "./status.ts";

const StatusLine = z.object({
  message_type: z.literal("status"),
  percent_done: z.number().optional(),
  bytes_done: z.number().optional(),
  total_bytes: z.number().optional(),
});

export interface Progress {
  /** Feed one line of restic --json output. */
  line(text: string): void;
  done(): void;
}

const JSON_INTERVAL_MS = 5_000;

export function createProgress(step: string, options: { tty?: boolean; write?: (s: string) => void } = {}): Progress {
  const tty = options.tty ?? Boolean(process.stderr.isTTY);
  const write = options.write ?? ((s: string) => process.stderr.write(s));
  let lastJson = 0;
  let drawn = false;
  const render = (percent_done: number, bytes_done: number, total_bytes: number | undefined) => {
    if (tty) {
      const width = 30;
      const filled = Math.round(Math.min(1, percent_done) * width);
      const bar = total_bytes
        ? `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${(percent_done * 100).toFixed(0)}%`
        : "[streaming]";
      write(`\r${step.padEnd(14)} ${bar} ${formatBytes(bytes_done)}   `);
      drawn = true;
    } else if (Date.now() - lastJson >= JSON_INTERVAL_MS) {
      lastJson = Date.now();
      log.info("backup progress", { step, percent_done, bytes_done, total_bytes });
    }
  };
  return {
    line(text) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return;
      }
      const parsed = StatusLine.safeParse(value);
      if (!parsed.success) return;
      const { percent_done = 0, bytes_done = 0, total_bytes } = parsed.data;
      if (bytes_done > 0 || total_bytes) render(percent_done, bytes_done, total_bytes);
    },
    done() {
      if (drawn) write("\n");
    },
  };
}
