/**
 * `backup repair --tier T`: brings a tier that a check found damaged back to a repository that a
 * full read proves sound, and keeps the evidence. The damaged packs are moved aside, never deleted
 * (restic >= 0.16: `repair packs`, which salvages their intact blobs and leaves a copy of each in
 * the quarantine directory; 0.14: renamed into the quarantine directory beside a local or SSD
 * repository), the index is rebuilt, a new snapshot of the live data refills whatever the lost
 * packs held that still exists (blob ids are content hashes, so older snapshots heal too), and a
 * snapshot that still misses data is forgotten with its record kept in the quarantine directory.
 * Then `check --read-data`: only a pass clears the damage mark.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { Config } from "../config/load.ts";
import { openDatabase } from "../db/connect.ts";
import { AppError, BackupError } from "../lib/errors.ts";
import { lastLines } from "../lib/program.ts";
import { type BackupContext, backupContext, tierRepo } from "./context.ts";
import { takeRunnerLock } from "./lock.ts";
import type { Repo, RunResult, TierName } from "./restic.ts";
import { removeStaleLocks } from "./retention.ts";
import { exitCodeFor, type RunReport } from "./run.ts";
import { clearDamaged, markDamaged } from "./status.ts";
import { copyFromLocal } from "./tiers/copy.ts";
import { runLocalTier } from "./tiers/local.ts";
import type { TierResult } from "./tiers/types.ts";

/** Pack ids that `restic check --read-data` reports as damaged (0.14 and >= 0.16 wordings). */
export function damagedPacks(checkOutput: string): string[] {
  const ids = [...checkOutput.matchAll(/(?:Pack ID does not match, want |pack )([0-9a-f]{64})(?: contains|,)/g)];
  return [...new Set(ids.map((m) => m[1]!))];
}

const tail = (r: RunResult) => lastLines(r.stderr) || `exit ${r.code}`;
const short = (id: string) => id.slice(0, 8);

export async function repairBackup(config: Config, tier: TierName): Promise<RunReport> {
  const ctx = backupContext(config);
  const { lock, warnings } = takeRunnerLock(ctx);
  let result: TierResult;
  try {
    const { repo, why } = tierRepo(ctx, tier);
    if (!repo)
      result = { tier, outcome: "failed", code: "TIER_UNAVAILABLE", message: `${tier}: cannot be reached: ${why}` };
    else result = await repairTier(ctx, repo);
  } catch (error) {
    const e = error as AppError;
    if (!(error instanceof AppError)) throw error;
    result = {
      tier,
      outcome: "failed",
      code: e.code,
      message: `${tier}: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ""}`,
    };
  } finally {
    lock.release();
  }
  return { results: [result], exitCode: exitCodeFor([result]), warnings };
}

async function repairTier(ctx: BackupContext, repo: Repo): Promise<TierResult> {
  const restic = ctx.restic();
  const steps: string[] = [];
  await removeStaleLocks(restic, repo);
  const first = await restic.run(repo, ["check", "--read-data"]);
  if (first.code === 0) {
    clearDamaged(ctx.stateDir, repo.tier);
    return {
      tier: repo.tier,
      outcome: "ok",
      message: `${repo.tier}: check --read-data passed: nothing to repair; the damage mark is cleared`,
    };
  }
  const packs = damagedPacks(first.stderr);
  markDamaged(ctx.stateDir, repo.tier, `restic check found damage: ${tail(first)}`, packs);
  const quarantine = quarantineDir(ctx, repo);
  if (packs.length) {
    await quarantinePacks(ctx, repo, packs, quarantine);
    steps.push(`moved damaged pack${packs.length === 1 ? "" : "s"} ${packs.map(short).join(", ")} to ${quarantine}`);
  }
  await restic.must(repo, restic.atLeast(0, 16) ? ["repair", "index"] : ["rebuild-index"], "rebuilding the index");
  steps.push("rebuilt the index");
  steps.push(await newSnapshot(ctx, repo));
  const given = await forgetBrokenSnapshots(ctx, repo, quarantine);
  if (given.length) {
    steps.push(
      `forgot ${given.length} snapshot${given.length === 1 ? "" : "s"} that still missed data (${given.map(short).join(", ")}; their records are in ${quarantine}${repo.tier === "local" ? "; the ring and cold tiers may still hold them" : ""})`,
    );
    if (repo.tier !== "local") steps.push(await newSnapshot(ctx, repo)); // copies them back from local, whole
  }
  const last = await restic.run(repo, ["check", "--read-data"]);
  if (last.code !== 0)
    throw new BackupError(
      "REPAIR_FAILED",
      `${steps.join("; ")}; but check --read-data still fails: ${tail(last)}`,
      `the tier stays marked damaged; restore from another tier (\`backup restore --tier\`), then move ${repo.repository} aside and run \`axe-appliance backup init\``,
    );
  clearDamaged(ctx.stateDir, repo.tier);
  return {
    tier: repo.tier,
    outcome: "ok",
    message: `${repo.tier}: repaired: ${steps.join("; ")}; check --read-data passed, retention resumes`,
  };
}

/** Beside a repository on a local disk (the SSD's stays on the SSD), else under the data directory. */
function quarantineDir(ctx: BackupContext, repo: Repo): string {
  const stamp = new Date().toISOString().replaceAll(":", "").slice(0, 17);
  const dir = isAbsolute(repo.repository)
    ? join(`${repo.repository}.quarantine`, stamp)
    : join(ctx.config.paths.data, "backup", "quarantine", `${repo.tier}-${stamp}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

async function quarantinePacks(ctx: BackupContext, repo: Repo, packs: string[], dir: string): Promise<void> {
  const restic = ctx.restic();
  if (restic.atLeast(0, 16)) {
    // Salvages the intact blobs, writes a copy of each damaged pack into the working directory, then removes it.
    await restic.must(repo, ["repair", "packs", ...packs], "salvaging the damaged packs", { cwd: dir });
    return;
  }
  if (!isAbsolute(repo.repository))
    throw new BackupError(
      "REPAIR_BY_HAND",
      `${repo.tier}: restic ${restic.version.major}.${restic.version.minor} cannot move packs out of ${repo.repository}: move ${packs.map((p) => `data/${p.slice(0, 2)}/${p}`).join(", ")} aside on the peer`,
      `then run \`axe-appliance backup repair --tier ${repo.tier}\` again (or install restic >= 0.16, which salvages packs itself)`,
    );
  mkdirSync(join(dir, "data"), { recursive: true, mode: 0o700 });
  for (const pack of packs) renameSync(join(repo.repository, "data", pack.slice(0, 2), pack), join(dir, "data", pack));
}

/** The live data again: local dumps and saves now; ring and cold copy from local. No retention. */
async function newSnapshot(ctx: BackupContext, repo: Repo): Promise<string> {
  if (repo.tier !== "local") {
    const { snapshot } = await copyFromLocal(ctx, repo, undefined);
    return `copied from local again (latest ${snapshot ?? "none"})`;
  }
  const db = await openDatabase(ctx.config);
  try {
    const done = await runLocalTier(ctx, db.target, { retention: false });
    return `new snapshot ${done.snapshot} of the live data`;
  } finally {
    await db.embedded?.stop();
  }
}

/** Snapshots whose data is still missing: each one's record is saved, then it is forgotten (never pruned). */
async function forgetBrokenSnapshots(ctx: BackupContext, repo: Repo, dir: string): Promise<string[]> {
  const restic = ctx.restic();
  if ((await restic.run(repo, ["check"])).code === 0) return [];
  const broken: string[] = [];
  for (const snapshot of await restic.snapshots(repo)) {
    const stats = await restic.run(repo, ["stats", "--mode", "raw-data", snapshot.id]);
    if (stats.code === 0) continue;
    const record = await restic.must(repo, ["cat", "snapshot", snapshot.id], "saving a snapshot's record");
    mkdirSync(join(dir, "snapshots"), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, "snapshots", `${snapshot.id}.json`), record.stdout, { mode: 0o600 });
    broken.push(snapshot.id);
  }
  if (broken.length) await restic.must(repo, ["forget", ...broken], "forgetting snapshots that miss data");
  return broken;
}
