/**
 * Point-in-time restore: `backup restore --to-time T | --to-lsn L | --latest --to-cluster DIR
 * [--tier local|ring|cold]`. From the tier alone (the ring or the cold SSD restores without this
 * machine's repository): the newest base backup that ends before the target, the WAL snapshots
 * after its start (and, on the local tier, the spool), replayed in a new cluster with
 * recovery_target_time/lsn and recovery_target_action = promote. A target the tier cannot reach is
 * refused with the range it reaches, before anything is fetched when the catalogue shows it, or by
 * Postgres' own refusal when the WAL ends before the target.
 *
 * @example
 * const restored = await restoreToPoint(config, { target: { kind: "time", time }, tier: "ring", dir });
 * await handOver(restored.cluster);
 */
import { join } from "node:path";
import type { Config } from "../config/load.ts";
import { parsePostgresUrl } from "../config/postgres-url.ts";
import { walSpool } from "../db/archiving.ts";
import { FRAME_DATABASE } from "../db/connect.ts";
import { clusterAccount, EMBEDDED_SUPERUSER } from "../db/embedded.ts";
import { type AppError, BackupError } from "../lib/errors.ts";
import { backupContext, tierRepo } from "./context.ts";
import {
  destroyCluster,
  extractBase,
  fetchSpool,
  fetchWal,
  type PointCluster,
  prepareCluster,
  type ReplayOutcome,
  replay,
  stopCluster,
  writeRecoverySettings,
} from "./pitr-cluster.ts";
import type { TierName } from "./restic.ts";
import { listSpool } from "./spool.ts";
import { assertNotOlderThanSeen } from "./status.ts";
import { type Catalogue, describeRange, type PointTarget, planRestore, readCatalogue } from "./wal-catalogue.ts";

export interface PointRestore {
  cluster: PointCluster;
  tier: TierName;
  /** The base backup it started from (short id) and how many WAL snapshots it fetched. */
  base: string;
  walSnapshots: number;
  /** The last transaction replayed, and Postgres' "recovery stopping ..." line when a target stopped it. */
  reachedTime?: string;
  stoppedAt?: string;
  /** The frame database's name in the restored cluster. */
  database: string;
}

/** Who we connect to the restored cluster as, and which database is frame's: what the live cluster has. */
export function restoredIdentity(config: Config): { user: string; database: string } {
  const url = config.appliance.database.url;
  if (!url) return { user: EMBEDDED_SUPERUSER, database: FRAME_DATABASE };
  const parsed = parsePostgresUrl(url)!; // appliance.yaml's schema checked it
  return { user: parsed.user, database: parsed.database || FRAME_DATABASE };
}

/** Builds DIR from the tier and replays it to `target`; the cluster is left running and promoted. */
export async function restoreToPoint(
  config: Config,
  options: { target: PointTarget; tier: TierName; dir: string; scratch?: boolean },
): Promise<PointRestore> {
  const ctx = backupContext(config);
  const { repo, why } = tierRepo(ctx, options.tier);
  if (!repo)
    throw new BackupError(
      "TIER_UNAVAILABLE",
      `the ${options.tier} tier cannot be read here: ${why}`,
      options.tier === "cold"
        ? "plug in the cold SSD, or restore from --tier local or ring"
        : "restore from another tier",
    );
  const spool = repo.tier === "local" ? walSpool(config) : undefined;
  const catalogue = await readCatalogue(ctx, repo, spool);
  // "the newest WAL" of a peer serving an older copy would be an old moment taken for the newest
  if (options.target.kind === "latest") assertNotOlderThanSeen(ctx.stateDir, ctx.host, repo, catalogue.snapshots);
  const plan = planRestore(catalogue, options.target);
  const { user, database } = restoredIdentity(config);
  const account = await clusterAccount(config.appliance.database.embedded_run_as);
  const cluster = await prepareCluster(options.dir, join(config.paths.data, "postgres"), account, user);
  try {
    await extractBase(ctx, repo, plan.base.snapshot, cluster);
    await fetchWal(
      ctx,
      repo,
      plan.wal.map((w) => w.snapshot),
      cluster,
    );
    const more = [...plan.more];
    let spoolFetched = false;
    const fetchMore = async (): Promise<boolean> => {
      const next = more.shift();
      if (next) await fetchWal(ctx, repo, [next.snapshot], cluster);
      else if (spool && !spoolFetched) {
        fetchSpool(
          spool,
          listSpool(spool).map((e) => e.name),
          cluster,
        );
        spoolFetched = true;
      } else return false;
      return true;
    };
    // --latest wants everything there is; a target wants as little as reaches it.
    if (options.target.kind === "latest") while (await fetchMore());
    await writeRecoverySettings(cluster, options.target);
    const deadlineMs = ctx.restic().deadlineMs(repo, ["check"]) ?? 30 * 60_000;
    let outcome = await replay(cluster, deadlineMs);
    while (!outcome.ok && outcome.endedEarly && (await fetchMore())) outcome = await replay(cluster, deadlineMs);
    if (!outcome.ok) throw refusal(catalogue, cluster, options.target, outcome);
    return {
      cluster,
      tier: repo.tier,
      base: plan.base.snapshot.id.slice(0, 8),
      walSnapshots: plan.wal.length + (plan.more.length - more.length),
      ...(outcome.reachedTime ? { reachedTime: outcome.reachedTime } : {}),
      ...(outcome.stoppedAt ? { stoppedAt: outcome.stoppedAt } : {}),
      database,
    };
  } catch (error) {
    // A target out of range (or a drill's scratch) leaves nothing worth keeping; any other failure leaves the cluster and its log.
    if (options.scratch || (error instanceof BackupError && error.code === "PITR_OUT_OF_RANGE"))
      await destroyCluster(cluster);
    else await stopCluster(cluster).catch(() => undefined);
    throw error;
  }
}

/** Postgres' own refusal, as ours: a target past the WAL the tier holds gets the tier's range. */
function refusal(
  catalogue: Catalogue,
  cluster: PointCluster,
  target: PointTarget,
  outcome: Extract<ReplayOutcome, { ok: false }>,
): AppError {
  const range = describeRange(catalogue, target.kind === "lsn" || target.kind === "name");
  if (outcome.endedEarly)
    return new BackupError(
      "PITR_OUT_OF_RANGE",
      `the ${catalogue.tier} tier's WAL ends before the target${outcome.lastCommit ? ` (its last transaction was at ${outcome.lastCommit})` : ""}; ${range}`,
      "pick an earlier target, or --latest for the newest state the tier holds",
    );
  if (/before consistent recovery point/.test(outcome.reason))
    return new BackupError(
      "PITR_OUT_OF_RANGE",
      `the target is before the end of the base backup it needs (${outcome.reason}); ${range}`,
      "pick a later target",
    );
  return new BackupError(
    "PITR_REPLAY_FAILED",
    `replaying the WAL in ${cluster.dir} failed: ${outcome.reason}`,
    `the cluster is left there, stopped; ${join(cluster.dir, "postgres.log")} says more. Remove ${cluster.dir}, ${cluster.walDir} and ${cluster.socketDir} before trying again`,
  );
}
