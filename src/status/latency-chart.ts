/**
 * The last hour of frame latency through the proxy as inline SVG (no script): p50 and p95 per
 * minute over grey request-count bars, with an axis for each (latency on the left, requests per
 * minute on the right). Each minute's points are drawn by weight: the more requests a minute had,
 * the larger and darker its dots, so a quiet minute with two slow requests does not look like a
 * busy one. Deploys, rollbacks and switches are vertical markers at their time. Minutes without
 * requests break the lines.
 */
import type { LatencyPoint } from "../proxy/latency-history.ts";

const W = 760;
const H = 260;
const PAD = { left: 56, right: 56, top: 30, bottom: 36 };
/** The request bars use the lower part of the plot, under the latency lines. */
const BAR_SHARE = 0.4;
const MINUTE = 60_000;

export interface ChartMarker {
  time: string;
  kind: "deploy" | "rollback" | "switch";
  label: string;
}

export function latencyChartSvg(points: LatencyPoint[], markers: ChartMarker[] = []): string {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const n = Math.max(points.length, 1);
  const step = plotW / n;
  const peak = Math.max(1, ...points.map((p) => p.p95_ms ?? 0));
  const top = niceCeiling(peak);
  const maxCount = Math.max(0, ...points.map((p) => p.count));
  const countTop = niceCeiling(Math.max(1, maxCount));
  const x = (i: number) => PAD.left + step * (i + 0.5);
  const y = (ms: number) => PAD.top + plotH - (Math.min(ms, top) / top) * plotH;
  const yCount = (count: number) => PAD.top + plotH - (count / countTop) * plotH * BAR_SHARE;
  const bars = points
    .map((p, i) =>
      p.count
        ? `<rect class="count" data-count="${p.count}" x="${(x(i) - step * 0.4).toFixed(1)}" width="${(step * 0.8).toFixed(1)}" y="${yCount(p.count).toFixed(1)}" height="${(PAD.top + plotH - yCount(p.count)).toFixed(1)}"><title>${p.minute.slice(11, 16)}Z: ${p.count} requests</title></rect>`
        : "",
    )
    .join("");
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const ms = top * f;
      return `<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(ms).toFixed(1)}" y2="${y(ms).toFixed(1)}"/><text class="axis latency-axis" x="${PAD.left - 6}" y="${(y(ms) + 4).toFixed(1)}" text-anchor="end">${formatMs(ms)}</text>`;
    })
    .join("");
  const countTicks = [0, 0.5, 1]
    .map((f) => {
      const count = countTop * f;
      return `<text class="axis count-axis" x="${W - PAD.right + 6}" y="${(yCount(count) + 4).toFixed(1)}">${formatCount(count)}</text>`;
    })
    .join("");
  const titles =
    `<text class="axis title" x="${PAD.left - 6}" y="${PAD.top - 14}" text-anchor="end">latency</text>` +
    `<text class="axis title" x="${W - PAD.right + 6}" y="${(yCount(countTop) - 14).toFixed(1)}">req/min</text>`;
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
  const start = points[0] ? Date.parse(points[0].minute) : Date.now() - n * MINUTE;
  return (
    `<svg id="latency-chart" data-minutes-with-requests="${withData}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="frame latency, last hour">` +
    `<style>.grid{stroke:#e3e3e3}.axis{font:11px sans-serif;fill:#666}.title{font-weight:bold}.count{fill:#d6dbe1}.p50{stroke:#2b6cb0;fill:none;stroke-width:1.5;stroke-opacity:.45}.p95{stroke:#dd6b20;fill:none;stroke-width:1.5;stroke-opacity:.45}.dot50{fill:#2b6cb0}.dot95{fill:#dd6b20}.marker line{stroke:#4a5568;stroke-dasharray:4 3}.marker.deploy line{stroke:#2f855a}.marker.rollback line{stroke:#c53030}.marker text{font:10px sans-serif;fill:#2d3748}</style>` +
    ticks +
    bars +
    lines(points, "p50_ms", "p50", x, y) +
    lines(points, "p95_ms", "p95", x, y) +
    weightedDots(points, maxCount, x, y) +
    markerLines(markers, start, step, n) +
    countTicks +
    titles +
    xLabels +
    (withData === 0
      ? `<text class="axis" x="${W / 2}" y="${H / 2}" text-anchor="middle">no frame requests in the last hour</text>`
      : "") +
    `</svg>`
  );
}

/** One dot per minute and quantile, its size and darkness growing with the minute's requests. */
function weightedDots(
  points: LatencyPoint[],
  maxCount: number,
  x: (i: number) => number,
  y: (ms: number) => number,
): string {
  return points
    .flatMap((p, i) => {
      if (!p.count) return [];
      const weight = p.count / Math.max(1, maxCount);
      const r = (1.5 + 3 * Math.sqrt(weight)).toFixed(1);
      const opacity = (0.25 + 0.75 * weight).toFixed(2);
      return (["p50_ms", "p95_ms"] as const).flatMap((key) => {
        const ms = p[key];
        if (ms === null) return [];
        return `<circle class="dot${key.slice(1, 3)} weighted" data-count="${p.count}" cx="${x(i).toFixed(1)}" cy="${y(ms).toFixed(1)}" r="${r}" fill-opacity="${opacity}"><title>${p.minute.slice(11, 16)}Z ${key.slice(0, 3)} ${formatMs(ms)} (${p.count} requests)</title></circle>`;
      });
    })
    .join("");
}

/** Vertical markers for deploys, rollbacks and switches in the hour; labels staggered so close ones stay readable. */
function markerLines(markers: ChartMarker[], start: number, step: number, n: number): string {
  const end = start + n * MINUTE;
  return markers
    .filter((m) => Date.parse(m.time) >= start && Date.parse(m.time) <= end)
    .sort((a, b) => Date.parse(a.time) - Date.parse(b.time))
    .map((m, i) => {
      const mx = (PAD.left + ((Date.parse(m.time) - start) / MINUTE) * step).toFixed(1);
      const ly = PAD.top - 2 - (i % 2) * 11;
      const anchor = Number(mx) > W - PAD.right - 120 ? "end" : "start";
      return `<g class="marker ${m.kind}" data-time="${esc(m.time)}"><line x1="${mx}" x2="${mx}" y1="${PAD.top}" y2="${H - PAD.bottom}"/><text x="${mx}" y="${ly}" text-anchor="${anchor}">${esc(m.label)}</text><title>${esc(m.time.slice(11, 19))}Z ${esc(m.label)}</title></g>`;
    })
    .join("");
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatCount(count: number): string {
  return Number.isInteger(count) ? String(count) : count.toFixed(1);
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
