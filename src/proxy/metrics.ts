/**
 * Counters for GET /metrics in the Prometheus text format. Recording is a few array
 * increments per request; the text is built only when scraped. A request is counted as the
 * caller got it: the status it saw, and whether the answer went out whole.
 */
import { COLORS, type Color } from "./admin-schema.ts";
import { LatencyHistory } from "./latency-history.ts";

export type UpstreamLabel = Color | "fixed" | "proxy";
const UPSTREAMS: UpstreamLabel[] = ["blue", "green", "fixed", "proxy"];
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface Gauges {
  live: Color;
  paused: boolean;
  held: number;
  sessions: number;
  inflight: Record<Color, number>;
  healthy: Record<Color, boolean>;
}

export class Metrics {
  /** [upstream][status class 1..5] */
  private readonly requests = UPSTREAMS.map(() => [0, 0, 0, 0, 0, 0]);
  private readonly buckets = BUCKETS.map(() => 0);
  private durationSum = 0;
  private durationCount = 0;
  private readonly errors = new LabelledCounter();
  private readonly refusals = new LabelledCounter();
  private readonly incomplete = new LabelledCounter();
  switches = 0;
  retries = 0;
  pauseTimeouts = 0;
  /** Per-minute latency of frame requests over the last hour, for the status page chart. */
  readonly history = new LatencyHistory();

  request(upstream: UpstreamLabel, status: number, seconds: number, completed = true): void {
    if (!completed) this.incomplete.add(`upstream="${upstream}"`);
    this.requests[UPSTREAMS.indexOf(upstream)]![Math.min(5, Math.max(1, (status / 100) | 0))]!++;
    this.durationSum += seconds;
    this.durationCount++;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.buckets[i]!++;
    if (upstream === "blue" || upstream === "green") this.history.record(seconds);
  }

  upstreamError(upstream: UpstreamLabel, kind: string): void {
    this.errors.add(`upstream="${upstream}",kind="${kind}"`);
  }

  /** A request the proxy refused itself; `reason` is the error code of its answer (a fixed set). */
  refusal(reason: string): void {
    this.refusals.add(`reason="${reason}"`);
  }

  render(gauges: Gauges): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family("axe_proxy_requests_total", "counter", "Requests answered, by upstream and status class.");
    for (const [i, u] of UPSTREAMS.entries())
      for (const [c, n] of this.requests[i]!.entries())
        if (c > 0 && n > 0) out.push(`axe_proxy_requests_total{upstream="${u}",code="${c}xx"} ${n}`);
    family(
      "axe_proxy_request_duration_seconds",
      "histogram",
      "Time from request to the last byte of the answer (for streams, until they end).",
    );
    for (const [i, le] of BUCKETS.entries())
      out.push(`axe_proxy_request_duration_seconds_bucket{le="${le}"} ${this.buckets[i]}`);
    out.push(`axe_proxy_request_duration_seconds_bucket{le="+Inf"} ${this.durationCount}`);
    out.push(
      `axe_proxy_request_duration_seconds_sum ${this.durationSum}`,
      `axe_proxy_request_duration_seconds_count ${this.durationCount}`,
    );
    family("axe_proxy_upstream_errors_total", "counter", "Upstream connection failures and timeouts.");
    this.errors.render(out, "axe_proxy_upstream_errors_total");
    family("axe_proxy_refusals_total", "counter", "Requests the proxy refused itself, by reason.");
    this.refusals.render(out, "axe_proxy_refusals_total");
    family("axe_proxy_incomplete_total", "counter", "Answers cut before their end (caller gone, upstream broke off).");
    this.incomplete.render(out, "axe_proxy_incomplete_total");
    family(
      "axe_proxy_retries_total",
      "counter",
      "Safe requests retried on the other color after a connection failure.",
    );
    out.push(`axe_proxy_retries_total ${this.retries}`);
    family("axe_proxy_switches_total", "counter", "Live color switches.");
    out.push(`axe_proxy_switches_total ${this.switches}`);
    family("axe_proxy_pause_timeouts_total", "counter", "Requests answered 503 after waiting out a pause.");
    out.push(`axe_proxy_pause_timeouts_total ${this.pauseTimeouts}`);
    family("axe_proxy_live", "gauge", "1 for the live color.");
    for (const c of COLORS) out.push(`axe_proxy_live{color="${c}"} ${gauges.live === c ? 1 : 0}`);
    family("axe_proxy_healthy", "gauge", "1 when the color passes its health check.");
    for (const c of COLORS) out.push(`axe_proxy_healthy{color="${c}"} ${gauges.healthy[c] ? 1 : 0}`);
    family("axe_proxy_inflight", "gauge", "Requests and streams in flight per color.");
    for (const c of COLORS) out.push(`axe_proxy_inflight{color="${c}"} ${gauges.inflight[c]}`);
    family("axe_proxy_paused", "gauge", "1 while paused.");
    out.push(`axe_proxy_paused ${gauges.paused ? 1 : 0}`);
    family("axe_proxy_held_requests", "gauge", "Requests waiting for resume.");
    out.push(`axe_proxy_held_requests ${gauges.held}`);
    family("axe_proxy_mcp_sessions", "gauge", "MCP sessions pinned to a color.");
    out.push(`axe_proxy_mcp_sessions ${gauges.sessions}`);
    return `${out.join("\n")}\n`;
  }
}

/** A counter family keyed by its label set, rendered in insertion order. */
class LabelledCounter {
  private readonly counts = new Map<string, number>();

  add(labels: string): void {
    this.counts.set(labels, (this.counts.get(labels) ?? 0) + 1);
  }

  render(out: string[], name: string): void {
    for (const [labels, n] of this.counts) out.push(`${name}{${labels}} ${n}`);
  }
}
