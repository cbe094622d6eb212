/**
 * Refusals before any principal existed are counted, not chained one by one: a request refused
 * at the door (401, 503, a Host or Origin refused, and the 403s of a signed-in account frame does
 * not serve: a guest, no role, another customer's domain) adds to a tally per reason, status,
 * account ("anonymous" when none was verified) and minute, and each tally becomes one row when its
 * minute is over: count, first and last seen, and a sample of source addresses as the proxy
 * reported them (X-Forwarded-For). A flood of bad tokens, or of one account's valid token that
 * frame refuses, then adds a few rows a minute whatever its rate, instead of one row per request.
 * Every other event (tool calls, a frame user's denied tool call) passes straight through.
 *
 * Bound: a tally lives in memory until its minute is over (checked every few seconds) or the sink
 * is flushed when serve stops; kill -9 loses at most the current minute's counts of refusals.
 *
 * @example
 * const audit = refusalTally(postgresAuditSink(sql, pipe));
 * await audit.flush(); // on the way out
 */
import type { AuditEvent, AuditSink } from "../audit-sink.ts";

/** Distinct source addresses kept per tally. */
export const SOURCE_SAMPLE = 8;
const SOURCE = /^[\w.:%[\], -]{1,128}$/;

interface Tally {
  minute: number;
  first: AuditEvent;
  last: Date;
  count: number;
  durationMs: number;
  sources: Set<string>;
}

/** A request refused at the door: no tool ran (a frame user's denied tool call names its tool). */
export function isDoorRefusal(event: AuditEvent): boolean {
  return (event.outcome === "refused" || event.outcome === "denied") && !event.tool && !event.entity;
}

export function refusalTally(
  inner: AuditSink & { flush?(): Promise<void> },
  options: { tickMs?: number } = {},
): AuditSink & { flush(): Promise<void> } {
  const tallies = new Map<string, Tally>();
  const pending = new Set<Promise<void>>();
  const write = (tally: Tally) => {
    const { first } = tally;
    const written = inner
      .record({
        at: first.at,
        who: first.who,
        ...(first.reason ? { reason: first.reason } : {}),
        ...(first.customer ? { customer: first.customer } : {}),
        outcome: first.outcome,
        ...(first.status ? { status: first.status } : {}),
        durationMs: tally.durationMs / tally.count,
        ...(first.requestId ? { requestId: first.requestId } : {}),
        detail: {
          tally: true,
          minute: new Date(tally.minute * 60_000).toISOString(),
          count: tally.count,
          first_at: first.at.toISOString(),
          last_at: tally.last.toISOString(),
          sources: [...tally.sources],
        },
      })
      .catch(() => {}) // the inner sink logs its own failures
      .finally(() => pending.delete(written));
    pending.add(written);
  };
  const writeBefore = (minute: number) => {
    for (const [key, tally] of tallies)
      if (tally.minute < minute) {
        tallies.delete(key);
        write(tally);
      }
  };
  const timer = setInterval(() => writeBefore(Math.floor(Date.now() / 60_000)), options.tickMs ?? 5_000);
  timer.unref();
  return {
    async record(event) {
      if (!isDoorRefusal(event)) return inner.record(event);
      const minute = Math.floor(event.at.getTime() / 60_000);
      const key = `${minute}\n${event.reason ?? ""}\n${event.status ?? 0}\n${event.who}\n${event.outcome}`;
      let tally = tallies.get(key);
      if (!tally)
        tallies.set(
          key,
          (tally = { minute, first: event, last: event.at, count: 0, durationMs: 0, sources: new Set() }),
        );
      tally.count++;
      tally.durationMs += event.durationMs;
      if (event.at > tally.last) tally.last = event.at;
      const source = event.source?.trim() || "unknown";
      if (tally.sources.size < SOURCE_SAMPLE) tally.sources.add(SOURCE.test(source) ? source : "unreadable");
    },
    /** Writes every tally, the current minute's too, then flushes the inner sink. */
    async flush() {
      clearInterval(timer);
      writeBefore(Number.POSITIVE_INFINITY);
      await Promise.all(pending);
      await inner.flush?.();
    },
  };
}
