/**
 * Retention: `restic forget` with the tier's keep policy, for this host's snapshots only, then
 * `restic prune` as a separate step, so a failure says exactly what was already forgotten.
 * Callers run it only after that tier's backup succeeded, never on a failed run, and never on a
 * tier marked damaged (prune would delete the damaged packs: the evidence) unless the operator
 * says so with --allow-prune-damaged.
 */
import { z } from "zod";
import { BackupError } from "../lib/errors.ts";
import { lastLines } from "../lib/program.ts";
import type { BackupContext, Keep } from "./context.ts";
import { parseJson, type Repo, type Restic, type RunResult, resticFailure } from "./restic.ts";
import { markDamaged, readStatus, updateTier } from "./status.ts";
import { BASE_TAG, WAL_TAG } from "./tags.ts";

/**
 * The forget arguments for a policy; undefined when the policy keeps everything. WAL snapshots are
 * kept here (`--keep-tag wal`): "the last N" of them would leave a gap in what a base backup needs;
 * forgetWalBeforeBases decides about them.
 */
export function forgetArgs(keep: Keep, host: string): string[] | undefined {
  const flags: string[] = [];
  for (const [name, value] of Object.entries(keep)) if (value > 0) flags.push(`--keep-${name}`, String(value));
  if (!flags.length) return undefined;
  return ["forget", "--json", "--host", host, ...flags, "--keep-tag", WAL_TAG];
}

const ForgetOutput = z
  .array(z.object({ remove: z.array(z.object({ id: z.string() })).nullish() }))
  .nullable()
  .transform((groups) => (groups ?? []).flatMap((g) => (g.remove ?? []).map((s) => s.id)));

/** Output of restic that means the repository itself is damaged, not a passing fault. */
export function looksDamaged(text: string): boolean {
  return /packs from index missing|pack id does not match|ciphertext verification failed|repository contains errors|not found in index|number of used blobs is larger/i.test(
    text,
  );
}

const short = (ids: string[]) => ids.map((id) => id.slice(0, 8)).join(", ");

/** Forgets by policy, then the WAL that no kept base backup needs; returns the ids of the snapshots removed. */
export async function forgetByPolicy(restic: Restic, repo: Repo, keep: Keep, host: string): Promise<string[]> {
  const args = forgetArgs(keep, host);
  if (!args) return [];
  const result = await restic.must(repo, args, "forgetting old snapshots (retention)");
  const forgotten = await parseJson(result.stdout, ForgetOutput, "restic forget --json");
  return [...forgotten, ...(await forgetWalBeforeBases(restic, repo, host))];
}

/**
 * WAL older than the oldest kept base backup goes with it: every segment a base backup needs was
 * archived after it started, so a WAL snapshot taken before the oldest one's start serves none.
 * Without a base backup (archiving just turned on) all WAL stays.
 */
async function forgetWalBeforeBases(restic: Restic, repo: Repo, host: string): Promise<string[]> {
  const snapshots = await restic.snapshots(repo, ["--host", host]);
  const oldestBase = snapshots
    .filter((s) => s.tags?.includes(BASE_TAG))
    .map((s) => Date.parse(s.time))
    .sort((a, b) => a - b)[0];
  if (oldestBase === undefined) return [];
  const stale = snapshots.filter((s) => s.tags?.includes(WAL_TAG) && Date.parse(s.time) < oldestBase).map((s) => s.id);
  if (!stale.length) return [];
  await restic.must(repo, ["forget", ...stale], "forgetting WAL older than the oldest base backup (retention)");
  return stale;
}

/**
 * Retention once the new snapshots are safe. Returns a line for the tier's message, or a warning
 * when retention is paused on a damaged tier; throws when forget or prune fails, saying which
 * snapshots forget had already removed.
 */
export async function retentionAfterSave(
  ctx: BackupContext,
  repo: Repo,
  keep: Keep,
): Promise<{ note?: string; warning?: string }> {
  const restic = ctx.restic();
  const tier = readStatus(ctx.stateDir).tiers[repo.tier] ?? {};
  if (tier.damaged && !ctx.allowPruneDamaged)
    return {
      warning: `${repo.tier}: retention paused: the ${repo.tier} repository is marked damaged (${tier.damaged.reason}); nothing was forgotten or pruned. Run \`axe-appliance backup repair --tier ${repo.tier}\` (or \`backup run --allow-prune-damaged\` once the damaged packs are no longer needed as evidence)`,
    };
  let forgotten: string[];
  try {
    forgotten = await retryAfterStaleLocks(restic, repo, () => forgetByPolicy(restic, repo, keep, ctx.host));
  } catch (error) {
    if (!(error instanceof BackupError)) throw error;
    throw new BackupError(
      error.code,
      `${error.message}; the new snapshots are saved, nothing was forgotten, the next run applies retention`,
      error.hint,
    );
  }
  if (forgotten.length === 0 && !tier.pruneDue) return { note: "retention: nothing to forget" };
  const prune = async () => {
    const result = await restic.run(repo, ["prune"]);
    const failure = result.code === 0 ? undefined : resticFailure(repo, "pruning", result);
    if (failure?.code === "REPO_LOCKED") throw failure;
    return result;
  };
  let pruned: RunResult;
  try {
    pruned = await retryAfterStaleLocks(restic, repo, prune);
  } catch (error) {
    if (!(error instanceof BackupError)) throw error;
    pruned = { code: 1, stdout: "", stderr: error.message };
  }
  const forgot = forgotten.length
    ? `retention forgot ${forgotten.length} snapshot${forgotten.length === 1 ? "" : "s"} (${short(forgotten)})`
    : "retention forgot nothing";
  if (pruned.code === 0) {
    if (tier.pruneDue) updateTier(ctx.stateDir, repo.tier, (t) => ({ ...t, pruneDue: undefined }));
    return { note: `${forgot.replace("retention ", "retention: ")}, pruned` };
  }
  const tail = lastLines(pruned.stderr) || `exit ${pruned.code}`;
  const damaged = looksDamaged(pruned.stderr);
  updateTier(ctx.stateDir, repo.tier, (t) => ({ ...t, pruneDue: true }));
  if (damaged) markDamaged(ctx.stateDir, repo.tier, `prune found damage: ${tail}`);
  throw new BackupError(
    damaged ? "PRUNE_FOUND_DAMAGE" : "PRUNE_FAILED",
    `${repo.tier} tier (${repo.repository}): ${forgot}, then prune failed: ${tail}; the new snapshots are saved, and the forgotten snapshots' data stays in the repository until a prune succeeds`,
    damaged
      ? `the repository is marked damaged and retention is paused: \`axe-appliance backup repair --tier ${repo.tier}\` (docs/operations.md, "A damaged repository")`
      : "the next run prunes again",
  );
}

/**
 * Removes locks left by restic processes that are gone (`restic unlock` without --remove-all
 * only removes stale ones). Call only while holding the runner lock: no runner of ours is alive.
 */
export async function removeStaleLocks(restic: Restic, repo: Repo): Promise<void> {
  await restic.must(repo, ["unlock"], "removing stale locks");
}

/**
 * Runs `work`; when restic finds the repository locked, removes stale locks and tries once more.
 * Costs nothing on a normal day. A live lock (another machine, a restic run by hand) survives
 * `restic unlock`, and the retry fails with restic's own message.
 */
export async function retryAfterStaleLocks<T>(restic: Restic, repo: Repo, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof BackupError && error.code === "REPO_LOCKED")) throw error;
  }
  await removeStaleLocks(restic, repo);
  return work();
}
