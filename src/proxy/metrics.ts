/**
 * Counters for GET /metrics in the Prometheus text format. Recording is a few map and array
 * increments per request; the text is built only when scraped. A request is counted as the
 * caller got it: the status it saw, and whether the answer went out whole.
 *
 * One label convention with frame (decision 54): an HTTP status is `code` with the real code.
 * Every label set we know of starts at 0, so an alert sees 0, not "absent": each upstream x code
 * the proxy passes on or answers, each upstream x failure kind, each refusal reason, each route x
 * color of the duration histogram. A GET or DELETE on /frame/mcp that frame answers 405 (a client
 * probing for an SSE stream, expected) is counted apart, as `axe_proxy_stream_probes_total`.
 */
import { COLORS, type Color } from "./admin-schema.ts";
import { LatencyHistory } from "./latency-history.ts";

export type UpstreamLabel = Color | "fixed" | "proxy";
const UPSTREAMS: UpstreamLabel[] = ["blue", "green", "fixed", "proxy"];
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** What callers get through the proxy, or from it: each starts at 0 for every upstream. */
export const PROXY_CODES = [200, 202, 204, 400, 401, 403, 404, 405, 408, 413, 415, 431, 500, 502, 503, 504] as const;
const FAILURE_KINDS = ["connect", "reset", "timeout", "broken"] as const;
/** Every refusal the proxy answers itself (held by a test to the error codes src/proxy answers with). */
export const PROXY_REFUSAL_REASONS = [
  "bad_framing",
  "bad_host",
  "bad_path",
  "bad_request",
  "bad_target",
  "bad_version",
  "body_too_large",
  "headers_too_large",
  "method_not_allowed",
  "request_timeout",
  "target_too_long",
  "upgrade_refused",
] as const;
/** The duration histogram's series: frame by color, fixed routes, the proxy's own answers. */
const ROUTES: Array<[route: string, color: string]> = [
  ["frame", "blue"],
  ["frame", "green"],
  ["fixed", "none"],
  ["proxy", "none"],
];

export interface Gauges {
  live: Color;
  paused: boolean;
  held: number;
  sessions: number;
  inflight: Record<Color, number>;
  healthy: Record<Color, boolean>;
}

interface UpstreamSeries {
  histogram: Histogram;
  /** Status code to its request counter. */
  codes: Map<number, Count>;
}

export class Metrics {
  private readonly series = new Map<UpstreamLabel, UpstreamSeries>();
  private readonly requests = new LabelledCounter(
    UPSTREAMS.flatMap((u) => PROXY_CODES.map((c) => `upstream="${u}",code="${c}"`)),
  );
  private readonly probes = new LabelledCounter(
    COLORS.flatMap((c) => ["GET", "DELETE"].map((m) => `color="${c}",method="${m}"`)),
  );
  private readonly durations = new Map(
    ROUTES.map(([route, color]) => [`route="${route}",color="${color}"`, new Histogram()]),
  );
  private readonly errors = new LabelledCounter(
    (["blue", "green", "fixed"] as const).flatMap((u) => FAILURE_KINDS.map((k) => `upstream="${u}",kind="${k}"`)),
  );
  private readonly refusals = new LabelledCounter(PROXY_REFUSAL_REASONS.map((r) => `reason="${r}"`));
  private readonly incomplete = new LabelledCounter(UPSTREAMS.map((u) => `upstream="${u}"`));
  switches = 0;
  retries = 0;
  pauseTimeouts = 0;
  /** Per-minute latency of frame requests over the last hour, for the status page chart. */
  readonly history = new LatencyHistory();

  request(upstream: UpstreamLabel, status: number, seconds: number, completed = true, method = "", path = ""): void {
    const color = upstream === "blue" || upstream === "green" ? upstream : undefined;
    if (color && status === 405 && (method === "GET" || method === "DELETE") && path === "/frame/mcp") {
      this.probes.add(`color="${color}",method="${method}"`);
      return;
    }
    if (!completed) this.incomplete.add(`upstream="${upstream}"`);
    const series = this.seriesOf(upstream, color);
    let count = series.codes.get(status);
    if (count === undefined)
      series.codes.set(status, (count = this.requests.count(`upstream="${upstream}",code="${status}"`)));
    count.n++;
    series.histogram.observe(seconds);
    if (color) this.history.record(seconds);
  }

  /** An upstream's duration histogram and request labels, made once (no label strings built per request). */
  private seriesOf(upstream: UpstreamLabel, color: Color | undefined): UpstreamSeries {
    let series = this.series.get(upstream);
    if (series) return series;
    const route = color ? `route="frame",color="${color}"` : `route="${upstream}",color="none"`;
    let histogram = this.durations.get(route);
    if (!histogram) this.durations.set(route, (histogram = new Histogram()));
    this.series.set(upstream, (series = { histogram, codes: new Map() }));
    return series;
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
    family(
      "axe_proxy_requests_total",
      "counter",
      "Requests answered, by upstream and HTTP code (probes counted apart).",
    );
    this.requests.render(out, "axe_proxy_requests_total");
    family(
      "axe_proxy_stream_probes_total",
      "counter",
      "GET/DELETE /frame/mcp answered 405 by frame: a client probing for an SSE stream (expected).",
    );
    this.probes.render(out, "axe_proxy_stream_probes_total");
    family(
      "axe_proxy_request_duration_seconds",
      "histogram",
      "Time from request to the last byte of the answer (for streams, until they end), by route and color.",
    );
    for (const [labels, histogram] of this.durations)
      histogram.render(out, "axe_proxy_request_duration_seconds", labels);
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

/** One label set's count, held where it is counted (no map lookup per request). */
interface Count {
  n: number;
}

/** A counter family keyed by its label set, rendered in insertion order; known sets start at 0. */
class LabelledCounter {
  private readonly counts = new Map<string, Count>();

  constructor(known: readonly string[] = []) {
    for (const labels of known) this.counts.set(labels, { n: 0 });
  }

  add(labels: string): void {
    this.count(labels).n++;
  }

  /** The count of `labels` (a new set joins the family at 0, to be counted at once). */
  count(labels: string): Count {
    let count = this.counts.get(labels);
    if (count === undefined) this.counts.set(labels, (count = { n: 0 }));
    return count;
  }

  render(out: string[], name: string): void {
    for (const [labels, count] of this.counts) out.push(`${name}{${labels}} ${count.n}`);
  }
}

/** One cumulative histogram series. */
class Histogram {
  private readonly buckets = BUCKETS.map(() => 0);
  private sum = 0;
  private count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.buckets[i]!++;
  }

  render(out: string[], name: string, labels: string): void {
    for (const [i, le] of BUCKETS.entries()) out.push(`${name}_bucket{${labels},le="${le}"} ${this.buckets[i]}`);
    out.push(
      `${name}_bucket{${labels},le="+Inf"} ${this.count}`,
      `${name}_sum{${labels}} ${this.sum}`,
      `${name}_count{${labels}} ${this.count}`,
    );
  }
}
