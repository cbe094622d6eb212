/**
 * frame's counters for GET /metrics in the Prometheus text format: MCP requests by status class
 * with a latency histogram, tool calls by tool and outcome, refusals by reason. Tool calls and
 * refusals are counted where they are already reported: the audit sink (`countingAuditSink`).
 */
import type { AuditEvent, AuditSink } from "./audit-sink.ts";

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LABEL = /[^\w.:-]/g;

export class FrameMetrics {
  private readonly requests = new Map<string, number>();
  private readonly buckets = BUCKETS.map(() => 0);
  private durationSum = 0;
  private durationCount = 0;
  private readonly toolCalls = new Map<string, number>();
  private readonly refusals = new Map<string, number>();

  constructor(readonly color: "blue" | "green") {}

  /** One answered /frame/mcp request. */
  request(status: number, seconds: number): void {
    bump(this.requests, `code="${Math.min(5, Math.max(1, (status / 100) | 0))}xx"`);
    this.durationSum += seconds;
    this.durationCount++;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.buckets[i]!++;
  }

  /** A tool call or a refused request, as the audit sink sees it. */
  audited(event: AuditEvent): void {
    if (event.tool) bump(this.toolCalls, `tool="${event.tool.replace(LABEL, "_")}",outcome="${event.outcome}"`);
    else if (event.outcome === "refused" || event.outcome === "denied")
      bump(this.refusals, `reason="${(event.reason ?? "unknown").replace(LABEL, "_")}",status="${event.status ?? 0}"`);
  }

  render(): string {
    const out: string[] = [];
    const c = `color="${this.color}"`;
    const family = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family("axe_frame_requests_total", "counter", "MCP requests answered, by status class.");
    for (const [labels, n] of this.requests) out.push(`axe_frame_requests_total{${c},${labels}} ${n}`);
    family("axe_frame_request_duration_seconds", "histogram", "Time to answer an MCP request (to response headers).");
    for (const [i, le] of BUCKETS.entries())
      out.push(`axe_frame_request_duration_seconds_bucket{${c},le="${le}"} ${this.buckets[i]}`);
    out.push(`axe_frame_request_duration_seconds_bucket{${c},le="+Inf"} ${this.durationCount}`);
    out.push(
      `axe_frame_request_duration_seconds_sum{${c}} ${this.durationSum}`,
      `axe_frame_request_duration_seconds_count{${c}} ${this.durationCount}`,
    );
    family("axe_frame_tool_calls_total", "counter", "Tool calls by tool and outcome (ok, error, denied).");
    for (const [labels, n] of this.toolCalls) out.push(`axe_frame_tool_calls_total{${c},${labels}} ${n}`);
    family(
      "axe_frame_auth_refusals_total",
      "counter",
      "Requests refused before any tool ran, by reason and HTTP status.",
    );
    for (const [labels, n] of this.refusals) out.push(`axe_frame_auth_refusals_total{${c},${labels}} ${n}`);
    return `${out.join("\n")}\n`;
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

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
