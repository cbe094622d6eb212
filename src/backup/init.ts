/**
 * `backup init`: a random password per tier in a 0600 file (never overwritten), the local
 * repository, and the ring and cold repositories made from it with the same chunker parameters
 * when they can be reached now (otherwise the first `backup run` that reaches them makes them).
 */
import { randomBytes } from "node:crypto";
import type { Config } from "../config/load.ts";
import type { AppError } from "../lib/errors.ts";
import { createSecretFileOnce } from "../lib/secret-file.ts";
import { type BackupContext, backupContext, coldPresent } from "./context.ts";
import type { Repo } from "./restic.ts";
import { type BackupExit, exitCodeFor } from "./run.ts";
import { ensureCopyRepo } from "./tiers/copy.ts";
import type { TierResult } from "./tiers/types.ts";

export async function initBackup(config: Config): Promise<{ results: TierResult[]; exitCode: BackupExit }> {
  const ctx = backupContext(config);
  const password = () => `${randomBytes(32).toString("base64url")}\n`;
  const made = [ctx.local, ctx.ring?.repo, ctx.cold]
    .filter((r) => r !== undefined)
    .filter((r) => createSecretFileOnce(r.passwordFile, password));
  const restic = ctx.restic();
  const results: TierResult[] = [];
  const note = (file: string) =>
    made.some((r) => r.passwordFile === file)
      ? ` (new password in ${file}: copy it to the operator's password manager)`
      : "";
  if (await restic.exists(ctx.local)) {
    results.push({
      tier: "local",
      outcome: "ok",
      message: `local: repository ${ctx.local.repository} already there${note(ctx.local.passwordFile)}`,
    });
  } else {
    // A re-created local repository takes a surviving sibling's chunker parameters, or copies stop deduplicating.
    const sibling = await existingSibling(ctx);
    if (sibling) await ensureCopyRepo(ctx, ctx.local, sibling);
    else await restic.must(ctx.local, ["init"], "creating the local repository");
    results.push({
      tier: "local",
      outcome: "ok",
      message: `local: created ${ctx.local.repository}${sibling ? ` with the ${sibling.tier} repository's chunker parameters` : ""}${note(ctx.local.passwordFile)}`,
    });
  }
  for (const repo of [ctx.ring?.repo, coldPresent(ctx) ? ctx.cold : undefined]) {
    if (!repo) continue;
    try {
      const created = await ensureCopyRepo(ctx, repo);
      results.push({
        tier: repo.tier,
        outcome: "ok",
        message: `${repo.tier}: ${created ? "created" : "already there:"} ${repo.repository}${note(repo.passwordFile)}`,
      });
    } catch (error) {
      const e = error as AppError;
      results.push({
        tier: repo.tier,
        outcome: "failed",
        code: e.code,
        message: `${repo.tier}: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ""}`,
      });
    }
  }
  if (!ctx.ring) results.push({ tier: "ring", outcome: "skipped", message: `ring: skipped, ${ctx.ringSkip}` });
  if (!ctx.settings.cold.enabled)
    results.push({ tier: "cold", outcome: "skipped", message: "cold: skipped, cold tier disabled in appliance.yaml" });
  else if (!coldPresent(ctx))
    results.push({
      tier: "cold",
      outcome: "skipped",
      message: `cold: volume ${ctx.cold.volume} not mounted; the first run with it mounted creates the repository`,
    });
  return { results, exitCode: exitCodeFor(results) };
}

/** The ring or cold repository when it exists and answers now; unreachable ones are passed over. */
async function existingSibling(ctx: BackupContext): Promise<Repo | undefined> {
  for (const repo of [ctx.ring?.repo, coldPresent(ctx) ? ctx.cold : undefined]) {
    if (!repo) continue;
    try {
      if (await ctx.restic().exists(repo)) return repo;
    } catch {
      // unreachable or locked: the next sibling, else a fresh repository
    }
  }
  return undefined;
}
