/**
 * WAL archiving in `backup status`: per tier, the age of the newest archived WAL it holds and its
 * RPO, judged against `backup.wal.rpo_minutes` (the cold SSD: cold.max_age_days). The RPO is the
 * age of the oldest archived change the tier does not hold yet: a segment's oldest change is at most
 * archive_timeout older than its push, so a tier that holds every pushed segment stands at
 * archive_timeout, and one that lacks some at the age of the oldest of them plus archive_timeout;
 * while wal-push fails, nothing new reaches any tier. (The age of the newest WAL alone would turn
 * red on every quiet night: a database that writes nothing makes no segments and loses nothing.)
 */
import { walSpool } from "../db/archiving.ts";
import type { BackupContext } from "./context.ts";
import type { TierName } from "./restic.ts";
import { listSpool, type PushState, readPushState, type SpoolEntry, walProblem } from "./spool.ts";
import type { StatusFile, TierStatus } from "./status.ts";
import { readShipState, type ShipState } from "./wal-ship.ts";

export interface WalTierReport {
  tier: TierName;
  rpoSeconds?: number;
  limitSeconds: number;
  /** Age of the newest WAL segment the tier holds. */
  newestSeconds?: number;
  lastProvenPitr?: string;
  problems: string[];
}

export interface WalInput {
  spool: SpoolEntry[];
  push: PushState;
  ship: ShipState;
  tiers: Array<{ tier: TierName; enabled: boolean; limitSeconds: number; status?: TierStatus }>;
  archiveTimeoutSeconds: number;
  now?: Date;
}

export const minutes = (seconds: number) => `${(seconds / 60).toFixed(1)} min`;

export function walReport(input: WalInput): WalTierReport[] {
  const now = (input.now ?? new Date()).getTime();
  const timeout = input.archiveTimeoutSeconds;
  const failingSince = input.push.failing ? Date.parse(input.push.failing.since) : undefined;
  const lastPush = input.push.lastPush ? Date.parse(input.push.lastPush.time) : undefined;
  const newestSpooled = input.spool.length ? Math.max(...input.spool.map((e) => e.mtimeMs)) : undefined;
  return input.tiers
    .filter((t) => t.enabled)
    .map(({ tier, limitSeconds, status }) => {
      const holds = (name: string) => tier === "local" || (input.ship.shipped[tier] ?? []).includes(name);
      const lacking = input.spool.filter((e) => !holds(e.name)).map((e) => e.mtimeMs);
      const newest =
        tier === "local"
          ? Math.max(lastPush ?? 0, newestSpooled ?? 0, input.ship.last.local?.pushed ?? 0)
          : (input.ship.last[tier]?.pushed ?? 0);
      const problems: string[] = [];
      const report: WalTierReport = {
        tier,
        limitSeconds,
        ...(newest ? { newestSeconds: (now - newest) / 1000 } : {}),
        ...(status?.lastProvenPitr ? { lastProvenPitr: status.lastProvenPitr.time } : {}),
        problems,
      };
      if (!newest && !lacking.length) {
        problems.push(
          tier === "local"
            ? "WAL: nothing archived yet; archive_mode takes effect when the cluster restarts (`axe-appliance db restart`)"
            : `WAL: none shipped to ${tier} yet; \`axe-appliance backup wal-ship\` says why`,
        );
        return report;
      }
      const waiting = lacking.length ? (now - Math.min(...lacking)) / 1000 : 0;
      const failing = failingSince === undefined ? 0 : (now - failingSince) / 1000;
      report.rpoSeconds = Math.max(waiting, failing) + timeout;
      if (report.rpoSeconds > limitSeconds)
        problems.push(
          `WAL: RPO ${minutes(report.rpoSeconds)} (the oldest archived change it lacks), over the limit of ${minutes(limitSeconds)}${
            failing >= waiting
              ? ": WAL archiving is failing (see below)"
              : tier === "cold"
                ? ": plug in the cold SSD; `backup wal-ship` copies to it"
                : `: ${lacking.length} segment${lacking.length === 1 ? "" : "s"} wait in the spool; \`axe-appliance backup wal-ship\` says why`
          }`,
        );
      return report;
    });
}

export function renderWal(reports: WalTierReport[]): string {
  const lines = ["WAL    RPO        limit      newest WAL   last proven PITR"];
  for (const r of reports) {
    lines.push(
      `${r.tier.padEnd(6)} ${(r.rpoSeconds === undefined ? "-" : minutes(r.rpoSeconds)).padEnd(10)} ${minutes(r.limitSeconds).padEnd(10)} ${(r.newestSeconds === undefined ? "-" : `${minutes(r.newestSeconds)} old`).padEnd(12)} ${r.lastProvenPitr?.slice(0, 19) ?? "-"}`,
    );
    for (const p of r.problems) lines.push(`       ! ${p}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The WAL part of `backup status`: RPO per tier and its text, and what is wrong with archiving itself. */
export function walArchiving(
  ctx: BackupContext,
  status: StatusFile,
): { tiers: WalTierReport[]; text: string; problem?: string } {
  const spool = walSpool(ctx.config);
  const { settings } = ctx;
  const tiers = walReport({
    spool: listSpool(spool),
    push: readPushState(spool),
    ship: readShipState(ctx.stateDir),
    archiveTimeoutSeconds: settings.wal.archive_timeout_seconds,
    tiers: [
      { tier: "local" as const, enabled: true, limitSeconds: settings.wal.rpo_minutes.local * 60 },
      { tier: "ring" as const, enabled: Boolean(ctx.ring), limitSeconds: settings.wal.rpo_minutes.ring * 60 },
      { tier: "cold" as const, enabled: settings.cold.enabled, limitSeconds: settings.cold.max_age_days * 86_400 },
    ].map((t) => ({ ...t, status: status.tiers[t.tier] })),
  });
  const problem = walProblem(spool);
  return { tiers, text: renderWal(tiers), ...(problem ? { problem } : {}) };
}
