/**
 * Runs a deploy or rollback as named steps: each step's outcome and duration becomes a line of
 * the JSON report and of the journal. The first failure stops the run with a DeployError that
 * says which step failed and why.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { AppError, DeployError } from "../lib/errors.ts";
import type { DeployJournal } from "./journal.ts";

/** `nothingDone` reasons: a connection that sent no byte, and the release that is already live (refused). */
export const NO_RELEASE_SENT = "no release sent";
export const ALREADY_LIVE = "already live";

/**
 * The report's wire format: `deploy push` reads it back from the receiver over ssh, so it is a
 * schema (unknown keys pass, for a receiver newer than the pusher).
 */
export const StepReportSchema = z.object({
  step: z.string(),
  ok: z.boolean(),
  ms: z.number(),
  detail: z.string().optional(),
  code: z.string().optional(),
  error: z.string().optional(),
});
export type StepReport = z.infer<typeof StepReportSchema>;

export const RunReportSchema = z.object({
  ok: z.boolean(),
  action: z.enum(["deploy", "rollback"]),
  id: z.string(),
  who: z.string(),
  release: z.string().optional(),
  color: z.string().optional(),
  previous: z.object({ color: z.string(), release: z.string().optional() }).optional(),
  steps: z.array(StepReportSchema),
  totalMs: z.number(),
  /** Deploy only: from the first byte read to the proxy switching. */
  receiveToSwitchMs: z.number().optional(),
  /** Set when the run changed nothing on purpose (no release sent, the release is already live): not a failed deploy. */
  nothingDone: z.string().optional(),
  error: z.object({ step: z.string(), code: z.string(), message: z.string(), hint: z.string().optional() }).optional(),
});
export type RunReport = z.infer<typeof RunReportSchema>;

export class StepRunner {
  readonly id = `${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, "")
    .slice(0, 14)}-${randomBytes(3).toString("hex")}`;
  readonly report: RunReport;
  private readonly started = performance.now();

  constructor(
    private readonly journal: DeployJournal,
    action: RunReport["action"],
    who: string,
    /** Hears each step as it ends (the receiver streams it to the operator). */
    private readonly onStep?: (step: StepReport) => void,
  ) {
    this.report = { ok: false, action, id: this.id, who, steps: [], totalMs: 0 };
    this.journal.append({ id: this.id, kind: "begin", action, who, pid: process.pid });
  }

  elapsedMs(): number {
    return Math.round(performance.now() - this.started);
  }

  /** Runs one step; its return value (a string) is the step's detail. */
  async step<T extends string | void>(name: string, work: () => Promise<T> | T): Promise<T> {
    const t0 = performance.now();
    try {
      const detail = await work();
      this.record({ step: name, ok: true, ms: Math.round(performance.now() - t0), ...(detail ? { detail } : {}) });
      return detail;
    } catch (error) {
      const e = error instanceof AppError ? error : undefined;
      const message = e?.message ?? (error as Error)?.message ?? String(error);
      const code = e?.code ?? "UNEXPECTED";
      this.record({ step: name, ok: false, ms: Math.round(performance.now() - t0), code, error: message });
      const reason = message.startsWith(`${name}:`) ? message : `${name}: ${message}`;
      this.report.error ??= { step: name, code, message: reason, ...(e?.hint ? { hint: e.hint } : {}) };
      throw new DeployError(
        code,
        `${this.report.action} ${this.report.release ?? ""} failed at step ${reason}`.replace("  ", " "),
        e?.hint,
      );
    }
  }

  /** A step that happened outside `step` (e.g. a recovered stale lock), recorded as done. */
  note(name: string, detail: string): void {
    this.record({ step: name, ok: true, ms: 0, detail });
  }

  finish(ok: boolean): RunReport {
    this.report.ok = ok;
    this.report.totalMs = this.elapsedMs();
    const { steps: _steps, id, action, who, ...summary } = this.report;
    this.journal.append({ id, kind: "end", action, who, ...summary });
    return this.report;
  }

  private record(step: StepReport): void {
    this.report.steps.push(step);
    this.journal.append({
      id: this.id,
      kind: "step",
      action: this.report.action,
      who: this.report.who,
      ...(this.report.release ? { release: this.report.release } : {}),
      ...step,
    });
    this.onStep?.(step);
  }
}
