/**
 * `backup run`: under the runner lock, each requested tier in turn (local, ring, cold). A tier
 * that fails is recorded and the others still run; nothing is forgotten on a failed tier.
 * Exit 0 when every attempted tier succeeded, 8 (partial) when some did, 7 when none did.
 *
 * @example
 * const report = await runBackup(loadConfig({ dir }), "all");
 * process.exitCode = report.exitCode;
 */
import type { Config } from "../config/load.ts";
import { openDatabase } from "../db/connect.ts";
import { AppError, EXIT } from "../lib/errors.ts";
import { type BackupContext, backupContext } from "./context.ts";
import { takeRunnerLock } from "./lock.ts";
import { TIERS, type TierName } from "./restic.ts";
import { updateTier } from "./status.ts";
import { runColdTier } from "./tiers/cold.ts";
import { runLocalTier } from "./tiers/local.ts";
import { runRingTier } from "./tiers/ring.ts";
import type { TierResult } from "./tiers/types.ts";

export const TIER_CHOICES = [...TIERS, "all"] as const;
export type TierChoice = (typeof TIER_CHOICES)[number];

export interface RunReport {
  results: TierResult[];
  exitCode: BackupExit;
  /** Said to the operator before the results, e.g. a runner lock taken over. */
  warnings: string[];
}

export async function runBackup(
  config: Config,
  choice: TierChoice = "all",
  options: { allowPruneDamaged?: boolean } = {},
): Promise<RunReport> {
  const ctx = { ...backupContext(config), allowPruneDamaged: options.allowPruneDamaged };
  const tiers: TierName[] = choice === "all" ? [...TIERS] : [choice];
  const { lock, warnings } = takeRunnerLock(ctx);
  const results: TierResult[] = [];
  try {
    for (const tier of tiers) results.push(await attempt(ctx, tier));
  } finally {
    lock.release();
  }
  return { results, exitCode: exitCodeFor(results), warnings };
}

/** What a backup command exits with: every attempted tier succeeded, some did, or none. */
export type BackupExit = typeof EXIT.ok | typeof EXIT.backupPartial | typeof EXIT.backup;

export function exitCodeFor(results: TierResult[]): BackupExit {
  const failed = results.filter((r) => r.outcome === "failed").length;
  const ok = results.filter((r) => r.outcome === "ok").length;
  return failed === 0 ? EXIT.ok : ok > 0 ? EXIT.backupPartial : EXIT.backup;
}

async function attempt(ctx: BackupContext, tier: TierName): Promise<TierResult> {
  let result: TierResult;
  try {
    result = await runTier(ctx, tier);
  } catch (error) {
    const e = error as AppError;
    const known = error instanceof AppError;
    result = {
      tier,
      outcome: "failed",
      code: known ? e.code : "UNEXPECTED",
      message: `${named(tier, known ? e.message : `unexpected failure: ${(error as Error)?.stack ?? String(error)}`)}${known && e.hint ? `\n  hint: ${e.hint}` : ""}`,
    };
  }
  if (result.outcome === "failed") {
    const failure = {
      time: new Date().toISOString(),
      ok: false,
      error: result.message.split("\n")[0],
      code: result.code,
    };
    updateTier(ctx.stateDir, tier, (t) => ({ ...t, lastAttempt: failure }));
  }
  return result;
}

async function runTier(ctx: BackupContext, tier: TierName): Promise<TierResult> {
  if (tier === "ring") return runRingTier(ctx);
  if (tier === "cold") return runColdTier(ctx);
  ctx.restic(); // a missing restic fails here, before the database is opened
  const db = await openDatabase(ctx.config);
  try {
    return await runLocalTier(ctx, db.target);
  } finally {
    await db.embedded?.stop();
  }
}

/** The message with its tier in front, once: most of restic.ts's errors name it already. */
function named(tier: TierName, message: string): string {
  return message.startsWith(`${tier}: `) ? message : `${tier}: ${message}`;
}
