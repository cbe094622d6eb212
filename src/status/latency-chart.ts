/**
 * The last hour of frame latency through the proxy as inline SVG (no script): p50 and p95 per
 * minute as lines over grey request-count bars. Minutes without requests break the lines.
 */
import type { LatencyPoint } from "../proxy/latency-history.ts";

const W = 760;
const H = 240;
const PAD = { left: 56, right: 16, top: 16, bottom: 36 };

export function latencyChartSvg(points: LatencyPoint[]): string {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const n = Math.max(points.length, 1);
  const step = plotW / n;
  const peak = Math.max(1, ...points.map((p) => p.p95_ms ?? 0));
  const top = niceCeiling(peak);
  const maxCount = Math.max(1, ...points.map((p) => p.count));
  const x = (i: number) => PAD.left + step * (i + 0.5);
  const y = (ms: number) => PAD.top + plotH - (Math.min(ms, top) / top) * plotH;
  const bars = points
    .map((p, i) =>
      p.count
        ? `<rect class="count" x="${(x(i) - step * 0.4).toFixed(1)}" width="${(step * 0.8).toFixed(1)}" y="${(PAD.top + plotH - (p.count / maxCount) * plotH * 0.35).toFixed(1)}" height="${((p.count / maxCount) * plotH * 0.35).toFixed(1)}"><title>${p.minute.slice(11, 16)}Z: ${p.count} requests</title></rect>`
        : "",
    )
    .join("");
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const ms = top * f;
      return `<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(ms).toFixed(1)}" y2="${y(ms).toFixed(1)}"/><text class="axis" x="${PAD.left - 6}" y="${(y(ms) + 4).toFixed(1)}" text-anchor="end">${formatMs(ms)}</text>`;
    })
    .join("");
  const xLabels = [
    [0, "-60 min"],
    [Math.floor(n / 2), "-30 min"],
    [n - 1, "now"],
  ]
    .map(
      ([i, label]) =>
        `<text class="axis" x="${x(i as number).toFixed(1)}" y="${H - 12}" text-anchor="middle">${label}</text>`,
    )
    .join("");
  const withData = points.filter((p) => p.count > 0).length;
  return (
    `<svg id="latency-chart" data-minutes-with-requests="${withData}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="frame latency, last hour">` +
    `<style>.grid{stroke:#e3e3e3}.axis{font:11px sans-serif;fill:#666}.count{fill:#d6dbe1}.p50{stroke:#2b6cb0;fill:none;stroke-width:2}.p95{stroke:#dd6b20;fill:none;stroke-width:2}.dot50{fill:#2b6cb0}.dot95{fill:#dd6b20}</style>` +
    ticks +
    bars +
    lines(points, "p50_ms", "p50", x, y) +
    lines(points, "p95_ms", "p95", x, y) +
    xLabels +
    (withData === 0
      ? `<text class="axis" x="${W / 2}" y="${H / 2}" text-anchor="middle">no frame requests in the last hour</text>`
      : "") +
    `</svg>`
  );
}

function lines(
  points: LatencyPoint[],
  key: "p50_ms" | "p95_ms",
  cls: string,
  x: (i: number) => number,
  y: (ms: number) => number,
): string {
  const out: string[] = [];
  let run: string[] = [];
  const flush = () => {
    if (run.length > 1) out.push(`<polyline class="${cls}" points="${run.join(" ")}"/>`);
    else if (run.length === 1) {
      const [cx, cy] = run[0]!.split(",");
      out.push(`<circle class="dot${cls.slice(1)}" cx="${cx}" cy="${cy}" r="3"/>`);
    }
    run = [];
  };
  points.forEach((p, i) => {
    const v = p[key];
    if (v === null) flush();
    else run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  });
  flush();
  return out.join("");
}

function niceCeiling(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * magnitude) return m * magnitude;
  return 10 * magnitude;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 ? 1 : 0)} s` : `${Number(ms.toFixed(1))} ms`;
}
