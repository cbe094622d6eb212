/**
 * A deploy or rollback as the operator reads it: one line per step, printed as each step ends
 * (push streams the receiver's steps; rollback runs them here), then one outcome line and the
 * hint. Each error is printed once: on its step's FAIL line.
 *
 * @example
 *   ok    verify       412 ms  signature, target linux-x64 and sha256 verified (...)
 *   FAIL  health     30012 ms  blue did not report healthy on release 1.2.0 within 30000 ms (...)
 *   ok    restore       310 ms  the passive color is back on its previous release; the live color never changed
 * deploy 1.2.0 FAILED at health; green stays live (31002 ms)
 * hint: see its log under data_dir/logs/blue.log
 */
import { printable } from "../lib/terminal-text.ts";
import type { RunReport, StepReport } from "./steps.ts";

/**
 * Newlines inside a message would break the table (and `deploy history`): one line, parts kept.
 * The text may come from the machine (push prints its receiver's report): nothing in it steers the terminal.
 */
export function oneLine(text: string): string {
  return printable(
    text
      .split(/\r?\n/)
      .map((part) => part.trim())
      .filter(Boolean)
      .join(" / "),
  );
}

export function renderStep(step: StepReport): string {
  const what = step.ok ? (step.detail ?? "") : (step.error ?? "");
  return `  ${step.ok ? "ok  " : "FAIL"}  ${oneLine(step.step).padEnd(8)} ${String(step.ms).padStart(6)} ms  ${oneLine(what)}\n`;
}

/** The line after the steps: what happened, which color serves, how long it took. */
export function renderOutcome(report: RunReport): string {
  const what = `${report.action} ${oneLine(report.release ?? "(no release)")}`;
  const took = `(${report.totalMs} ms)`;
  if (report.nothingDone) return `${what}: nothing done, ${oneLine(report.nothingDone)} ${took}\n`;
  if (report.ok) return `${what} ok, ${oneLine(report.color ?? "?")} is live ${took}\n`;
  const switched = report.steps.some((s) => s.step === "switch" && s.ok);
  const serving = oneLine(
    switched ? `${report.color} is live` : `${report.previous?.color ?? "the live color"} keeps serving`,
  );
  return `${what} FAILED at ${oneLine(report.error?.step ?? "?")}; ${serving} ${took}\n`;
}

/** Every step, the outcome and the hint: for a report that arrives whole (rollback, an older receiver). */
export function renderRun(report: RunReport): string {
  return report.steps.map(renderStep).join("") + renderOutcome(report) + renderHint(report);
}

export function renderHint(report: RunReport): string {
  return report.error?.hint ? `hint: ${oneLine(report.error.hint)}\n` : "";
}
