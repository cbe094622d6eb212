/** Helpers for status tests: backup status written by the backup module itself, and `status --json` through the real CLI. */

import type { TierName } from "../../src/backup/restic.ts";
import { updateTier } from "../../src/backup/status.ts";
import { type StatusReport, StatusReportSchema } from "../../src/status/report.ts";
import { runCli } from "../helpers/cli.ts";

/** Records a good snapshot `hoursAgo` hours ago on each tier, as `backup run` does. */
export function recordSnapshots(stateDir: string, hoursAgo: Partial<Record<TierName, number>>): void {
  for (const [tier, hours] of Object.entries(hoursAgo) as Array<[TierName, number]>) {
    const time = new Date(Date.now() - hours * 3_600_000).toISOString();
    updateTier(stateDir, tier, (t) => ({
      ...t,
      lastAttempt: { time, ok: true },
      lastSnapshot: { time, id: `snap-${tier}-${hours}` },
    }));
  }
}

export interface StatusRun {
  code: number;
  report: StatusReport;
  stderr: string;
}

/** `axe-appliance status --json --config DIR`; the JSON must be a valid report whatever the exit code. */
export async function statusJson(dir: string): Promise<StatusRun> {
  const run = await runCli(["status", "--json", "--config", dir]);
  let json: unknown;
  try {
    json = JSON.parse(run.stdout);
  } catch {
    throw new Error(`status --json printed no JSON (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
  return { code: run.code, report: StatusReportSchema.parse(json), stderr: run.stderr };
}

export function levels(report: StatusReport): Record<string, string> {
  return Object.fromEntries(report.checks.map((c) => [c.name, c.level]));
}
