/**
 * The audit anchors (frame/store/audit-anchor.ts): when the chain heads were last signed, and which
 * rows that covers. Read from the anchors file only (status never opens the database or the keys):
 * an anchor older than three periods means rows since then are not covered by a signature.
 */
import type { Config } from "../config/load.ts";
import { anchorPlace, latestAnchor } from "../frame/store/audit-anchor-format.ts";
import type { Check } from "./report.ts";

export function checkAuditAnchors(config: Config, now = new Date()): Check {
  const periodMinutes = config.appliance.frame.audit_anchor_minutes;
  let last: ReturnType<typeof latestAnchor>;
  try {
    last = latestAnchor(anchorPlace(config).file);
  } catch (error) {
    return { name: "audit", level: "warn", summary: `audit anchors unreadable: ${(error as Error).message}` };
  }
  if (!last)
    return {
      name: "audit",
      level: "warn",
      summary: "no audit anchor yet: serve signs the chain heads every few minutes (`axe-appliance audit anchor` now)",
    };
  const minutes = Math.max(0, Math.round((now.getTime() - Date.parse(last.at)) / 60_000));
  const heads = last.heads.map((h) => `${h.log} #${h.seq}`).join(", ");
  const what = `last anchor ${minutes} min ago (${last.reason}): ${heads}`;
  if (minutes > 3 * periodMinutes)
    return {
      name: "audit",
      level: "warn",
      summary: `${what}; rows since are not covered by a signature (is serve running? \`axe-appliance audit anchor\`)`,
    };
  return { name: "audit", level: "ok", summary: what };
}
