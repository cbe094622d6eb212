import { describe, expect, test } from "bun:test";
import { LatencyHistory } from "../../src/proxy/latency-history.ts";
import { latencyChartSvg } from "../../src/status/latency-chart.ts";

const T0 = Date.parse("2026-01-01T12:00:00Z");
const MIN = 60_000;

describe("latency history for the status page", () => {
  test("one point per minute of the last hour; p50 and p95 from the buckets, never above the slowest request", () => {
    const history = new LatencyHistory();
    for (let i = 0; i < 90; i++) history.record(0.002, T0 + 5_000); // 2 ms
    for (let i = 0; i < 10; i++) history.record(0.4, T0 + 6_000); // 400 ms
    history.record(0.05, T0 + 10 * MIN);
    const { points } = history.series(T0 + 10 * MIN + 1);
    expect(points).toHaveLength(60);
    expect(points[59]!.minute).toBe("2026-01-01T12:10:00.000Z");
    const first = points.find((p) => p.minute === "2026-01-01T12:00:00.000Z")!;
    expect(first.count).toBe(100);
    expect(first.p50_ms).toBeGreaterThanOrEqual(2);
    expect(first.p50_ms).toBeLessThan(3.5);
    expect(first.p95_ms).toBeGreaterThanOrEqual(400);
    expect(first.p95_ms).toBeLessThanOrEqual(400);
    expect(first.max_ms).toBe(400);
    expect(points.filter((p) => p.count > 0)).toHaveLength(2);
    expect(points.filter((p) => p.count === 0).every((p) => p.p50_ms === null)).toBe(true);
  });

  test("minutes older than an hour fall out", () => {
    const history = new LatencyHistory();
    history.record(0.01, T0);
    history.record(0.01, T0 + 61 * MIN);
    const { points } = history.series(T0 + 61 * MIN);
    expect(points.reduce((n, p) => n + p.count, 0)).toBe(1);
  });

  test("the chart draws a p95 line across consecutive minutes and breaks it at a gap", () => {
    const history = new LatencyHistory();
    for (const minute of [0, 1, 2, 5, 6]) history.record(0.02, T0 + minute * MIN);
    const svg = latencyChartSvg(history.series(T0 + 6 * MIN).points);
    expect(svg).toContain('data-minutes-with-requests="5"');
    expect(svg.match(/<polyline class="p95"/g)).toHaveLength(2);
    expect(svg.match(/<rect class="count"/g)).toHaveLength(5);
    expect(latencyChartSvg(new LatencyHistory().series(T0).points)).toContain("no frame requests in the last hour");
  });
});
