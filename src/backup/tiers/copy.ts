/**
 * Tiers 2 and 3 never see the database directly: their repositories are made with
 * `init --from-repo --copy-chunker-params` (so deduplication carries over) and filled with
 * `restic copy` from the local repository.
 */

import { lastLines } from "../../lib/program.ts";
import type { BackupContext, Keep } from "../context.ts";
import type { Repo } from "../restic.ts";
import { looksDamaged, retentionAfterSave, retryAfterStaleLocks } from "../retention.ts";
import { assertNotOlderThanSeen, markDamaged, recordSnapshot, updateTier } from "../status.ts";

/** A repository as the source of a copy or an init: the password by file, through the environment. */
export function fromEnv(source: Repo): Record<string, string> {
  return { RESTIC_FROM_REPOSITORY: source.repository, RESTIC_FROM_PASSWORD_FILE: source.passwordFile };
}

/**
 * Creates the repository with `source`'s chunker parameters (default: local's) if it does not exist
 * yet, so deduplication carries over between the tiers.
 */
export async function ensureCopyRepo(ctx: BackupContext, repo: Repo, source: Repo = ctx.local): Promise<boolean> {
  const restic = ctx.restic();
  if (await restic.exists(repo)) return false;
  await restic.must(
    repo,
    [...(source.options ?? []).flatMap((o) => ["-o", o]), "init", "--copy-chunker-params"],
    "creating the repository",
    { extraEnv: fromEnv(source) },
  );
  return true;
}

/** Copies this host's snapshots from local, applies retention, records the outcome. */
export async function copyFromLocal(
  ctx: BackupContext,
  repo: Repo,
  keep: Keep | undefined,
  options: { check?: boolean } = {},
): Promise<{ snapshot?: string; created: boolean; checkError?: string; note?: string; warning?: string }> {
  const restic = ctx.restic();
  const created = await ensureCopyRepo(ctx, repo);
  await retryAfterStaleLocks(restic, repo, () =>
    restic.must(repo, ["copy", "--host", ctx.host], "copying snapshots from the local repository", {
      extraEnv: fromEnv(ctx.local),
    }),
  );
  const snapshots = await restic.snapshots(repo, ["--host", ctx.host]);
  // A peer that keeps serving an older copy (what we copied gone by the next session): fail, and keep the record.
  assertNotOlderThanSeen(ctx.stateDir, ctx.host, repo, snapshots);
  const latest = snapshots.sort((a, b) => a.time.localeCompare(b.time)).at(-1);
  // The age of a copy is the age of the newest snapshot it holds, not the time of the copy.
  if (latest) recordSnapshot(ctx.stateDir, repo.tier, { time: latest.time, id: latest.id.slice(0, 8) });
  else
    updateTier(ctx.stateDir, repo.tier, (t) => ({ ...t, lastAttempt: { time: new Date().toISOString(), ok: true } }));
  const checked = options.check ? await checkCopy(ctx, repo) : undefined;
  const retention = keep ? await retentionAfterSave(ctx, repo, keep) : {};
  const size = await restic.stats(repo);
  updateTier(ctx.stateDir, repo.tier, (t) => ({ ...t, size }));
  return { snapshot: latest?.id.slice(0, 8), created, checkError: checked, ...retention };
}

/** `restic check` after a copy, before retention: damage found here pauses retention. */
async function checkCopy(ctx: BackupContext, repo: Repo): Promise<string | undefined> {
  const check = await ctx.restic().run(repo, ["check"]);
  const error = check.code === 0 ? undefined : lastLines(check.stderr, 2);
  updateTier(ctx.stateDir, repo.tier, (t) => ({
    ...t,
    lastCheck: { time: new Date().toISOString(), ok: !error, ...(error ? { error } : {}) },
  }));
  if (error && looksDamaged(check.stderr)) markDamaged(ctx.stateDir, repo.tier, `restic check found damage: ${error}`);
  return error;
}
