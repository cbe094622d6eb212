/**
 * frame's GET /metrics (Prometheus text format, through prom-client, decision 54): MCP requests by
 * HTTP code with a latency histogram, tool calls by tool and outcome, refusals by reason and code,
 * a build-info gauge, and the process_* / nodejs_* metrics. Every label set we know of starts at 0,
 * so an alert sees 0, not "absent". Tool calls and refusals are counted where they are already
 * reported: the audit sink (`countingAuditSink`).
 *
 * A GET or DELETE on /frame/mcp answered 405 is the stateless server's expected answer to a client
 * probing for an SSE stream (the SDK does it on every connect): it is counted apart, as a probe,
 * so it never reads as a client error.
 */
import { Counter, Histogram, Registry } from "prom-client";
import type { Color } from "../lib/colors.ts";
import { registerProcessMetrics } from "../lib/process-metrics.ts";
import type { AuditEvent, AuditOutcome, AuditSink } from "./audit-sink.ts";

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LABEL = /[^\w.:-]/g;

/** What /frame/mcp can answer (besides the probes' 405): each starts at 0. */
export const FRAME_CODES = [200, 202, 400, 401, 403, 406, 413, 415, 500, 503] as const;
const TOOL_OUTCOMES: readonly AuditOutcome[] = ["ok", "error", "denied"];
/** Audited like tool calls (tools/resources.ts). */
const RESOURCE_REQUESTS = ["resources/list", "resources/read"];

/**
 * Every reason a request is refused before a tool runs, with its HTTP code. A test holds this to
 * the reasons src/frame throws, so a new one cannot be missing here (and absent in a dashboard).
 */
export const REFUSAL_REASONS: Readonly<Record<string, 401 | 403 | 503>> = {
  missing_token: 401,
  malformed_header: 401,
  malformed_token: 401,
  bad_signature: 401,
  alg_not_allowed: 401,
  unknown_key: 401,
  token_expired: 401,
  token_not_yet_valid: 401,
  wrong_issuer: 401,
  wrong_audience: 401,
  invalid_claims: 401,
  wrong_tenant: 401,
  no_subject: 401,
  not_access_token: 401,
  service_token_malformed: 401,
  service_token_unknown: 401,
  service_token_revoked: 401,
  service_token_expired: 401,
  service_token_elsewhere: 401,
  client_not_allowed: 403,
  app_only: 403,
  guest: 403,
  missing_scope: 403,
  no_role: 403,
  no_entity: 403,
  group_overage: 403,
  groups_missing: 403,
  other_customer_domain: 403,
  unknown_domain: 403,
  host_or_origin: 403,
  no_auth_not_local: 403,
  keys_unavailable: 503,
};

export interface FrameMetricsOptions {
  /** The tools frame serves: each tool x outcome starts at 0. */
  tools: readonly string[];
  /** process_* and nodejs_* (off in tests that make many registries). */
  processMetrics?: boolean;
}

export class FrameMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"code">;
  private readonly probes: Counter<"method">;
  private readonly duration: Histogram;
  private readonly toolCalls: Counter<"tool" | "outcome">;
  private readonly refusals: Counter<"reason" | "code">;
  /** Tool labels: a name a caller made up is counted as "unknown" (any local account reads /metrics; names are unbounded). */
  private readonly known: Set<string>;

  constructor(
    readonly color: Color,
    options: FrameMetricsOptions,
  ) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ color });
    this.requests = new Counter({
      name: "axe_frame_requests_total",
      help: "MCP requests answered, by HTTP code (probes counted apart).",
      labelNames: ["code"],
      registers,
    });
    this.probes = new Counter({
      name: "axe_frame_stream_probes_total",
      help: "GET/DELETE /frame/mcp answered 405: a client probing for an SSE stream a stateless server does not offer (expected).",
      labelNames: ["method"],
      registers,
    });
    this.duration = new Histogram({
      name: "axe_frame_request_duration_seconds",
      help: "Time to answer an MCP request (to response headers).",
      buckets: BUCKETS,
      registers,
    });
    this.toolCalls = new Counter({
      name: "axe_frame_tool_calls_total",
      help: "Tool calls by tool and outcome (ok, error, denied).",
      labelNames: ["tool", "outcome"],
      registers,
    });
    this.refusals = new Counter({
      name: "axe_frame_auth_refusals_total",
      help: "Requests refused before any tool ran, by reason and HTTP code.",
      labelNames: ["reason", "code"],
      registers,
    });
    this.known = new Set([...options.tools, ...RESOURCE_REQUESTS]);
    for (const code of FRAME_CODES) this.requests.inc({ code: String(code) }, 0);
    for (const method of ["GET", "DELETE"]) this.probes.inc({ method }, 0);
    for (const tool of options.tools)
      for (const outcome of TOOL_OUTCOMES) this.toolCalls.inc({ tool: label(tool), outcome }, 0);
    for (const [reason, code] of Object.entries(REFUSAL_REASONS)) this.refusals.inc({ reason, code: String(code) }, 0);
    this.ready = options.processMetrics === false ? Promise.resolve() : registerProcessMetrics(this.registry);
  }

  /** Resolves once the build and process metrics are registered. */
  readonly ready: Promise<void>;

  /** One answered /frame/mcp request. */
  request(method: string, status: number, seconds: number): void {
    if (status === 405 && (method === "GET" || method === "DELETE")) {
      this.probes.inc({ method });
      return;
    }
    this.requests.inc({ code: String(status) });
    this.duration.observe(seconds);
  }

  /** A tool call or a refused request, as the audit sink sees it. */
  audited(event: AuditEvent): void {
    if (event.tool)
      this.toolCalls.inc({ tool: this.known.has(event.tool) ? label(event.tool) : "unknown", outcome: event.outcome });
    else if (event.outcome === "refused" || event.outcome === "denied")
      this.refusals.inc({ reason: label(event.reason ?? "unknown"), code: String(event.status ?? 0) });
  }

  async render(): Promise<string> {
    await this.ready;
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Counts each event in `metrics`, then hands it to `inner`. */
export function countingAuditSink(inner: AuditSink, metrics: FrameMetrics): AuditSink {
  return {
    record(event) {
      metrics.audited(event);
      return inner.record(event);
    },
  };
}

function label(value: string): string {
  return value.replace(LABEL, "_");
}
