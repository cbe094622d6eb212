/**
 * The operator's status page: one self-contained HTML document (inline CSS and SVG, no script)
 * with the machine's checks, the last hour of latency (with its deploys and switches) and the
 * backup ages. It reloads itself every 30 seconds. Ages are in hours everywhere.
 */
import { formatAge } from "../backup/status.ts";
import type { LatencySeries } from "../proxy/latency-history.ts";
import { type ChartMarker, latencyChartSvg } from "./latency-chart.ts";
import type { BackupTierReport, Level, StatusReport } from "./report.ts";

const COLOR: Record<Level, string> = { ok: "#2f855a", warn: "#b7791f", fail: "#c53030" };
const WORD: Record<Level, string> = { ok: "GREEN", warn: "YELLOW", fail: "RED" };

export function renderStatusPage(
  report: StatusReport,
  latency: LatencySeries | undefined,
  markers: ChartMarker[] = [],
): string {
  const rows = report.checks
    .map(
      (c) =>
        `<tr><td><span class="dot" style="background:${COLOR[c.level]}"></span>${esc(c.level.toUpperCase())}</td><td>${esc(c.name)}</td><td>${esc(c.summary)}</td></tr>`,
    )
    .join("");
  const requests = latency?.points.reduce((sum, p) => sum + p.count, 0) ?? 0;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="30">
<title>${esc(report.customer)}: ${WORD[report.level]}</title>
<style>
body{font:14px/1.4 -apple-system,"DejaVu Sans",sans-serif;margin:24px;color:#1a202c;background:#f7fafc}
h1{font-size:20px;margin:0 0 4px}.sub{color:#4a5568;margin-bottom:16px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:bold}
section{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:12px 16px;margin-bottom:16px}
h2{font-size:15px;margin:0 0 8px}table{border-collapse:collapse;width:100%}td{padding:3px 8px;border-top:1px solid #edf2f7;vertical-align:top}td:first-child,td:nth-child(2){white-space:nowrap;width:1%}
.dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:6px}
.legend span{margin-right:16px}.bar{height:14px;background:#edf2f7;border-radius:3px;position:relative;width:320px;display:inline-block;vertical-align:middle}
.bar i{position:absolute;left:0;top:0;bottom:0;border-radius:3px}
</style></head>
<body>
<h1>${esc(report.customer)} <span class="badge" id="level" style="background:${COLOR[report.level]}">${WORD[report.level]}</span></h1>
<div class="sub">${esc(report.machine)} · live ${esc(report.live ?? "?")} · release ${esc(report.release ?? "?")} · ${esc(report.time.slice(0, 19))}Z</div>
<section><h2>Frame latency through the proxy, last hour (${requests} requests)</h2>
<div class="legend"><span style="color:#2b6cb0">● p50</span><span style="color:#dd6b20">● p95</span><span>(a dot's size: that minute's requests)</span><span style="color:#a0aec0">▮ requests per minute</span><span style="color:#2f855a">┆ deploy</span><span style="color:#c53030">┆ rollback</span><span style="color:#4a5568">┆ switch</span></div>
${latency ? latencyChartSvg(latency.points, markers) : "<p>the proxy did not answer; no latency to show</p>"}
</section>
<section><h2>Backup ages</h2><table id="backups">${report.backup.map(backupRow).join("")}</table></section>
<section><h2>Checks</h2><table id="checks">${rows}</table></section>
</body></html>
`;
}

/**
 * A tier's bar shows the freshness left: full and green right after a good snapshot, shrinking
 * as the age nears the limit; late, failed or never backed up is a full bar in yellow or red.
 */
function backupRow(tier: BackupTierReport): string {
  if (!tier.enabled)
    return `<tr data-tier="${esc(tier.tier)}"><td>${esc(tier.tier)}</td><td colspan="2">disabled</td></tr>`;
  const level: Level = tier.problems.length === 0 ? "ok" : tier.tier === "local" ? "fail" : "warn";
  const left = tier.ageHours === null ? 0 : Math.max(0, 1 - tier.ageHours / tier.limitHours);
  const width = level === "ok" ? Math.max(0.04, left) : 1;
  const age = tier.ageHours === null ? "no snapshot yet" : `${formatAge(tier.ageHours)} old`;
  return `<tr data-tier="${esc(tier.tier)}" data-level="${level}"><td>${esc(tier.tier)}</td><td><span class="bar"><i class="${level}" style="width:${(width * 100).toFixed(1)}%;background:${COLOR[level]}"></i></span></td><td>${esc(age)}, limit ${esc(formatAge(tier.limitHours))}${tier.problems.length ? ` · ${esc(tier.problems.join("; "))}` : ""}</td></tr>`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
