/**
 * The audit hook: the server reports every tool call and every refused request to an AuditSink.
 * The Postgres sink (hash-chained `audit_log` per entity) comes from the frame data module; until
 * it is plugged in, `logAuditSink` writes one JSON line per event. Events never hold PII or tokens:
 * arguments appear only as a digest.
 *
 * @example
 * const sink = logAuditSink(logger);
 * await sink.record({ at: new Date(), who: "service:st_1a2b", entity: "axe", tool: "whoami", outcome: "ok", durationMs: 3 });
 */
import type { Logger } from "../lib/log.ts";

export type AuditOutcome =
  /** The tool ran and returned a result. */
  | "ok"
  /** The tool ran and answered with a tool error (bad input, conflict, not found). */
  | "error"
  /** Authenticated, but the role or entity does not allow it (HTTP 403 or a role refusal inside MCP). */
  | "denied"
  /** No usable credentials: missing, invalid, expired or revoked token (HTTP 401), or keys unavailable (503). */
  | "refused";

export interface AuditEvent {
  at: Date;
  /** Principal id (`{tid}/{oid}`, `service:{id}`, `dev`), or "anonymous" when no principal could be built. */
  who: string;
  /** Why a request was refused or denied: a stable code such as `token_expired`, never token text. */
  reason?: string;
  /** The customer this machine serves. */
  customer?: string;
  /** The entity the call ran in (or was aimed at); absent when unknown. */
  entity?: string;
  /** Tool name for tool calls; absent for refused HTTP requests. */
  tool?: string;
  outcome: AuditOutcome;
  /** HTTP status for refused requests. */
  status?: number;
  durationMs: number;
  /** sha256 (hex) of the canonical JSON of the tool arguments; never the arguments themselves. */
  argsDigest?: string;
  /** X-Request-Id from the proxy, or one the server made. */
  requestId?: string;
  tokenKind?: "entra" | "service" | "dev";
  /**
   * What a row summarises, as JSON: the record or collection a write changed, a tally of anonymous
   * refusals. Never PII: ids, names, counts and addresses only.
   */
  detail?: Record<string, unknown>;
  /** The caller's address as the proxy reports it (X-Forwarded-For); kept only in refusal tallies. */
  source?: string;
  /**
   * Already in the chain: a write tool's row is inserted in the write's own transaction, and the
   * sink hears of it afterwards only to count and log it. Sinks that store rows skip these.
   */
  committed?: boolean;
}

export interface AuditSink {
  record(event: AuditEvent): Promise<void>;
}

/** Writes each event as a JSON log line (level info; `audit: true` marks it for log shippers). */
export function logAuditSink(logger: Logger): AuditSink {
  return {
    async record(event) {
      logger.info("audit", { audit: true, ...event, at: event.at.toISOString() });
    },
  };
}

/** Collects events in memory; for tests and for composing sinks. */
export function memoryAuditSink(): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return {
    events,
    async record(event) {
      events.push(event);
    },
  };
}
