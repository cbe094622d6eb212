/** Backup ages in the Prometheus text format, appended to the proxy's /metrics from the backup status file. */
import { readStatus } from "../backup/status.ts";

const TIERS = ["local", "ring", "cold"] as const;

export function backupMetrics(stateDir: string, now = Date.now()): string {
  let status;
  try {
    status = readStatus(stateDir);
  } catch {
    return "# backup status file unreadable; see `axe-appliance backup status`\n";
  }
  const out = [
    "# HELP axe_backup_last_success_timestamp_seconds Time of the tier's last good snapshot.",
    "# TYPE axe_backup_last_success_timestamp_seconds gauge",
  ];
  const ages = [
    "# HELP axe_backup_last_success_age_seconds Age of the tier's last good snapshot.",
    "# TYPE axe_backup_last_success_age_seconds gauge",
  ];
  for (const tier of TIERS) {
    const time = status.tiers[tier]?.lastSnapshot?.time;
    if (!time) continue;
    const at = Date.parse(time);
    out.push(`axe_backup_last_success_timestamp_seconds{tier="${tier}"} ${at / 1000}`);
    ages.push(`axe_backup_last_success_age_seconds{tier="${tier}"} ${Math.max(0, (now - at) / 1000)}`);
  }
  return `${[...out, ...ages].join("\n")}\n`;
}
