/** Tier 2: the ring peer's machine over sftp (ssh on Tailscale), filled by `restic copy`. */
import type { BackupContext } from "../context.ts";
import { updateTier } from "../status.ts";
import { copyFromLocal } from "./copy.ts";
import type { TierResult } from "./types.ts";

export async function runRingTier(ctx: BackupContext): Promise<TierResult> {
  if (!ctx.ring) {
    updateTier(ctx.stateDir, "ring", (t) => ({
      ...t,
      skipped: { time: new Date().toISOString(), reason: ctx.ringSkip ?? "disabled" },
    }));
    return { tier: "ring", outcome: "skipped", message: `ring: skipped, ${ctx.ringSkip}` };
  }
  const keep = ctx.settings.ring.forget ? ctx.settings.ring.keep : undefined;
  const { snapshot, created, note, warning } = await copyFromLocal(ctx, ctx.ring.repo, keep);
  return {
    tier: "ring",
    outcome: "ok",
    snapshot,
    message: `ring: ${created ? "created the repository on" : "copied to"} peer ${ctx.ring.peer}${created ? " and copied" : ""}; latest snapshot ${snapshot ?? "none"}${keep ? "" : " (retention left to the append-only peer)"}${note ? `; ${note}` : ""}`,
    warning,
  };
}
