/**
 * serve's side of the anchors: sign the chain heads every `frame.audit_anchor_minutes` and once
 * more when it stops. Blue and green both run this; a color skips its turn when the newest anchor
 * in the file (the other color's) is recent enough, so the file grows by about one line per period.
 *
 * @example
 * const anchoring = startAnchoring(ownerSql, anchorPlace(config), { everyMs: 300_000, logger });
 * await anchoring.stop(); // signs a last anchor
 */
import type { Config } from "../../config/load.ts";
import { connect, type DatabaseTarget, type Sql } from "../../db/connect.ts";
import type { Logger } from "../../lib/log.ts";
import { initAuditKey } from "../crypto/audit-key.ts";
import { signAnchor } from "./audit-anchor.ts";
import { type AnchorPlace, type AnchorReason, anchorPlace, latestAnchor } from "./audit-anchor-format.ts";

const STOP_ANCHOR_MS = 3_000;

export interface Anchoring {
  /** Stops the timer and signs a last anchor (the tail written until now). */
  stop(): Promise<void>;
}

export async function startAnchoring(
  owner: Sql,
  place: AnchorPlace,
  options: { everyMs: number; logger: Logger },
): Promise<Anchoring> {
  await initAuditKey(place.secretsDir); // made on first need, like the master key; `keys init` makes it too
  let running: Promise<void> = Promise.resolve();
  const sign = (reason: AnchorReason) => {
    running = running.then(async () => {
      try {
        await signAnchor(owner, place, reason);
      } catch (error) {
        options.logger.warn("audit anchor not signed; the chain tail since the last anchor is unproven", {
          reason,
          error: String(error),
        });
      }
    });
    return running;
  };
  const due = () => {
    const last = latestAnchor(place.file);
    return !last || Date.now() - Date.parse(last.at) >= options.everyMs * 0.9;
  };
  if (due()) void sign("timer");
  const timer = setInterval(() => {
    if (due()) void sign("timer");
  }, options.everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      // Bounded: with the database gone, stopping must not wait for its connect timeout.
      let timeout: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([sign("stop"), new Promise((resolve) => (timeout = setTimeout(resolve, STOP_ANCHOR_MS)))]);
      clearTimeout(timeout);
    },
  };
}

/**
 * `backup run` calls this before its dump: the anchor names heads the dump holds (the dump's
 * snapshot is taken later), and the snapshot of config and state that follows carries it, so a
 * restored database is checked against anchors that were written with it.
 */
export async function anchorForBackup(config: Config, owner: DatabaseTarget): Promise<void> {
  const sql = connect(owner, { max: 1, catalogOnly: true });
  try {
    const place = anchorPlace(config);
    await initAuditKey(place.secretsDir);
    await signAnchor(sql, place, "backup");
  } finally {
    await sql.end({ timeout: 5 });
  }
}
