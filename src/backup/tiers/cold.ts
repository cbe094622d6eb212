/**
 * Tier 3: the cold SSD, whenever its volume is mounted (the marker file is there): `restic copy`
 * from local, then `restic check`. Absent, it is skipped quietly; its age is still reported and
 * a warning raised once it is older than the configured limit.
 */
import { type BackupContext, coldPresent } from "../context.ts";
import { formatAge, readStatus, updateTier } from "../status.ts";
import { copyFromLocal } from "./copy.ts";
import type { TierResult } from "./types.ts";

export async function runColdTier(ctx: BackupContext, now = new Date()): Promise<TierResult> {
  if (!ctx.settings.cold.enabled)
    return { tier: "cold", outcome: "skipped", message: "cold: skipped, cold tier disabled in appliance.yaml" };
  if (!coldPresent(ctx)) {
    updateTier(ctx.stateDir, "cold", (t) => ({
      ...t,
      skipped: { time: now.toISOString(), reason: `volume ${ctx.cold.volume} not mounted` },
    }));
    const last = readStatus(ctx.stateDir).tiers.cold?.lastSnapshot;
    const limitHours = ctx.settings.cold.max_age_days * 24;
    const ageHours = last ? (now.getTime() - Date.parse(last.time)) / 3_600_000 : undefined;
    const age = ageHours === undefined ? "never copied" : `last copy ${formatAge(ageHours)} old`;
    const warning =
      ageHours === undefined || ageHours > limitHours
        ? `cold SSD: ${age}, over the limit of ${ctx.settings.cold.max_age_days} days: mount ${ctx.cold.volume} and run \`axe-appliance backup run --tier cold\``
        : undefined;
    return {
      tier: "cold",
      outcome: "skipped",
      message: `cold: volume ${ctx.cold.volume} absent, skipped (${age})`,
      warning,
    };
  }
  const { snapshot, created, checkError, note, warning } = await copyFromLocal(ctx, ctx.cold, ctx.settings.cold.keep, {
    check: true,
  });
  if (checkError)
    return {
      tier: "cold",
      outcome: "failed",
      code: "CHECK_FAILED",
      snapshot,
      message: `cold: copied, but restic check failed: ${checkError}; retention did not run. Run \`axe-appliance backup verify\``,
    };
  return {
    tier: "cold",
    outcome: "ok",
    snapshot,
    message: `cold: ${created ? "created the repository and " : ""}copied to ${ctx.cold.repository}, checked; latest snapshot ${snapshot ?? "none"}${note ? `; ${note}` : ""}`,
    warning,
  };
}
