/**
 * Backup tiers with the age of their last good snapshot, judged by the backup module's own
 * limits. The local tier is the one restores come from first: its problems are red, the others yellow.
 */

import { backupContext, tierLimits } from "../backup/context.ts";
import { hungRunner, runBudgetMs, runnerLockPath } from "../backup/lock.ts";
import { formatAge, readStatus, reportTiers } from "../backup/status.ts";
import type { Config } from "../config/load.ts";
import type { BackupTierReport, Check } from "./report.ts";

export function checkBackups(config: Config, now = new Date()): { backup: BackupTierReport[]; checks: Check[] } {
  let reports;
  let runner: string | undefined;
  try {
    const ctx = backupContext(config);
    reports = reportTiers(readStatus(ctx.stateDir), tierLimits(ctx), now);
    runner = hungRunner(runnerLockPath(ctx), runBudgetMs(ctx));
  } catch (error) {
    return { backup: [], checks: [{ name: "backup", level: "fail", summary: (error as Error).message }] };
  }
  const backup = reports.map((r) => ({
    tier: r.tier,
    enabled: r.enabled,
    lastGood: r.lastGood ?? null,
    ageHours: r.ageHours === undefined ? null : Math.round(r.ageHours * 100) / 100,
    limitHours: r.limitHours,
    problems: r.problems,
  }));
  const checks = reports.map((r): Check => {
    const name = `backup:${r.tier}`;
    if (!r.enabled) return { name, level: "ok", summary: "disabled" };
    if (r.problems.length === 0 && r.notes.length > 0) return { name, level: "warn", summary: r.notes.join("; ") };
    if (r.problems.length === 0)
      return {
        name,
        level: "ok",
        summary: `last good snapshot ${formatAge(r.ageHours ?? 0)} old (limit ${formatAge(r.limitHours)})`,
      };
    return { name, level: r.tier === "local" ? "fail" : "warn", summary: r.problems.join("; ") };
  });
  if (runner) checks.push({ name: "backup:runner", level: "fail", summary: runner });
  return { backup, checks };
}
