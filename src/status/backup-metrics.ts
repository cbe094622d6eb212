/**
 * Backup ages in the Prometheus text format, appended to the proxy's /metrics from the backup
 * status file: for every configured tier (a tier that never had a good snapshot too, so an alert
 * sees it), the last good snapshot's time and age, the age limit, and whether the tier's last
 * run, check or drill failed. Alert: `axe_backup_last_success_age_seconds > axe_backup_age_limit_seconds`.
 */
import { backupContext, tierLimits } from "../backup/context.ts";
import { readStatus, reportTiers } from "../backup/status.ts";
import type { Config } from "../config/load.ts";

export function backupMetrics(config: Config, now = new Date()): string {
  let reports;
  try {
    const ctx = backupContext(config);
    reports = reportTiers(readStatus(ctx.stateDir), tierLimits(ctx), now).filter((r) => r.enabled);
  } catch {
    return "# backup status file unreadable; see `axe-appliance backup status`\n";
  }
  const families = {
    timestamp: family(
      "axe_backup_last_success_timestamp_seconds",
      "Time of the tier's last good snapshot (0: none yet).",
    ),
    age: family("axe_backup_last_success_age_seconds", "Age of the tier's last good snapshot (+Inf: none yet)."),
    limit: family("axe_backup_age_limit_seconds", "The age over which the tier is late (backup.*.max_age_*)."),
    problems: family(
      "axe_backup_problems",
      "What `backup status` finds wrong with the tier: late, last run, check or drill failed, damaged (0: none).",
    ),
  };
  for (const r of reports) {
    const tier = `{tier="${r.tier}"}`;
    const at = r.lastGood ? Date.parse(r.lastGood) / 1000 : 0;
    families.timestamp.push(`axe_backup_last_success_timestamp_seconds${tier} ${at}`);
    families.age.push(
      `axe_backup_last_success_age_seconds${tier} ${r.ageHours === undefined ? "+Inf" : Math.max(0, r.ageHours * 3600)}`,
    );
    families.limit.push(`axe_backup_age_limit_seconds${tier} ${r.limitHours * 3600}`);
    families.problems.push(`axe_backup_problems${tier} ${r.problems.length}`);
  }
  return `${Object.values(families).flat().join("\n")}\n`;
}

function family(name: string, help: string): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`];
}
