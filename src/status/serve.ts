/**
 * The status page for the operator on a loopback port (`status --serve`): GET / is the page,
 * GET /status.json the report. Bound to 127.0.0.1 only; reach it from elsewhere through ssh -L.
 * The Host must be a loopback name (DNS rebinding: a page on another site must not read it).
 */
import type { Config } from "../config/load.ts";
import { journalFor } from "../deploy/receive.ts";
import { loopbackGuard } from "../frame/http/guards.ts";
import { PAGE_HEADERS } from "../lib/page-headers.ts";
import type { SwitchEvent } from "../proxy/latency-history.ts";
import { collectStatus } from "./collect.ts";
import type { ChartMarker } from "./latency-chart.ts";
import { renderStatusPage } from "./page.ts";
import type { ProxySource } from "./proxy-source.ts";

/** The page for the current moment: a fresh report plus the proxy's latency (absent when the proxy is down). */
export async function statusPageHtml(config: Config, proxy: ProxySource): Promise<string> {
  const [report, latency] = await Promise.all([collectStatus(config, proxy), proxy.latency().catch(() => undefined)]);
  return renderStatusPage(report, latency, chartMarkers(config, latency?.switches ?? []));
}

/**
 * The chart's markers: each deploy and rollback at the moment its switch step ended (from the
 * deploy journal), and each switch the proxy saw that no deploy or rollback explains (a manual
 * `proxy switch`).
 */
export function chartMarkers(config: Config, switches: SwitchEvent[], now = Date.now()): ChartMarker[] {
  const since = now - 3_600_000;
  const runs: ChartMarker[] = [];
  try {
    for (const entry of journalFor(config).read())
      if (entry.kind === "step" && entry.step === "switch" && entry.ok === true && Date.parse(entry.time) >= since)
        runs.push({
          time: entry.time,
          kind: entry.action,
          label: `${entry.action} ${typeof entry.release === "string" ? entry.release : ""}`.trim(),
        });
  } catch {
    // an unreadable journal only costs the markers; the deploy check says why
  }
  const explained = (time: string) => runs.some((r) => Math.abs(Date.parse(r.time) - Date.parse(time)) < 60_000);
  const manual = switches
    .filter((s) => !explained(s.time))
    .map((s): ChartMarker => ({ time: s.time, kind: "switch", label: `switch to ${s.to}` }));
  return [...runs, ...manual];
}

export function serveStatusPage(config: Config, proxy: ProxySource, port: number): Bun.Server<undefined> {
  const guard = loopbackGuard();
  return Bun.serve({
    hostname: "127.0.0.1",
    port,
    async fetch(request) {
      const refused = guard.check(request);
      if (refused) return new Response(`Forbidden: ${refused}\n`, { status: 403 });
      const path = new URL(request.url).pathname;
      if (request.method !== "GET") return new Response("GET only\n", { status: 405 });
      if (path === "/")
        return new Response(await statusPageHtml(config, proxy), {
          headers: PAGE_HEADERS,
        });
      if (path === "/status.json")
        return Response.json(await collectStatus(config, proxy), { headers: { "cache-control": "no-store" } });
      return new Response("not found: try / or /status.json\n", { status: 404 });
    },
  });
}
