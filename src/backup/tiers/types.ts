/** What one tier's run reports back to the runner. */
import type { TierName } from "../restic.ts";

export interface TierResult {
  tier: TierName;
  /** ok: done; skipped: not attempted on purpose (cold volume absent, ring disabled); failed. */
  outcome: "ok" | "skipped" | "failed";
  message: string;
  /** The new snapshot (local) or the latest copied one (ring, cold). */
  snapshot?: string;
  bytesAdded?: number;
  /** A warning that is not a failure, such as a cold copy older than its limit. */
  warning?: string;
  code?: string;
}
