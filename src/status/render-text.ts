/**
 * `status` on a terminal: one line per check with a green/yellow/red mark. Colors only when
 * stdout is a TTY (and NO_COLOR is unset); otherwise OK / WARN / FAIL words carry the meaning.
 * A summary may quote what another program said (a color's /healthz release, a step's error), so
 * every text goes through `printable`; `--json` keeps it as it came.
 */
import { printable } from "../lib/terminal-text.ts";
import type { Level, StatusReport } from "./report.ts";

const WORD: Record<Level, string> = { ok: "OK  ", warn: "WARN", fail: "FAIL" };
const ANSI: Record<Level, string> = { ok: "\x1b[32m", warn: "\x1b[33m", fail: "\x1b[31m" };

export function useColor(stream: { isTTY?: boolean } = process.stdout): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR;
}

export function paint(level: Level, text: string, color: boolean): string {
  return color ? `${ANSI[level]}${text}\x1b[0m` : text;
}

export function renderStatusText(report: StatusReport, color = useColor()): string {
  const head =
    `${report.customer} on ${report.machine}: ${paint(report.level, report.level === "ok" ? "GREEN" : report.level === "warn" ? "YELLOW" : "RED", color)}` +
    `  live ${report.live ?? "?"}, release ${printable(report.release ?? "?")}  (${report.time.slice(0, 19)}Z)`;
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = report.checks.map(
    (c) => `  ${paint(c.level, WORD[c.level], color)}  ${printable(c.name).padEnd(width)}  ${printable(c.summary)}`,
  );
  return `${[head, ...lines].join("\n")}\n`;
}
