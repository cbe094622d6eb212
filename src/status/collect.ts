/**
 * One machine's status: every check run at once, each bounded by its own timeout, assembled into
 * a StatusReport. Nothing here changes the machine; a check that cannot run is a red row, not a crash.
 *
 * @example
 * const report = await collectStatus(config, socketProxySource(proxySettings(config).adminSocket));
 * process.exitCode = STATUS_EXIT[report.level];
 */
import type { Config } from "../config/load.ts";
import { checkAuditAnchors } from "./audit-check.ts";
import { checkBackups } from "./backup-check.ts";
import { checkColors } from "./colors-check.ts";
import { checkDatabase } from "./database-check.ts";
import { checkLastDeploy } from "./deploy-check.ts";
import { checkDisk } from "./disk-check.ts";
import { checkMetadata } from "./metadata-check.ts";
import type { ProxySource } from "./proxy-source.ts";
import { type StatusReport, worstLevel } from "./report.ts";

export async function collectStatus(config: Config, proxy: ProxySource, now = new Date()): Promise<StatusReport> {
  const [colors, metadata] = await Promise.all([checkColors(config, proxy), checkMetadata(config)]);
  const database = await checkDatabase(config, colors.database);
  const deploy = checkLastDeploy(config);
  const backups = checkBackups(config, now);
  const disk = checkDisk(config);
  const audit = checkAuditAnchors(config, now);
  const checks = [...colors.checks, database.check, deploy.check, ...backups.checks, audit, metadata.check, disk.check];
  return {
    version: 1,
    customer: config.customer.name,
    machine: config.customer.machine, // the Tailscale name customers.yaml knows it by, as fleet status does
    time: now.toISOString(),
    level: worstLevel(checks.map((c) => c.level)),
    live: colors.live,
    release: colors.release,
    colors: colors.colors,
    database: database.database,
    lastDeploy: deploy.lastDeploy,
    backup: backups.backup,
    metadata: metadata.metadata,
    disk: disk.disk,
    checks,
  };
}
