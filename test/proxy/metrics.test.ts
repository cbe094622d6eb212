/** The proxy's telemetry (issue 19): /metrics on loopback TCP, zeros for every known label set, one label convention. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PROXY_CODES, PROXY_REFUSAL_REASONS } from "../../src/proxy/metrics.ts";
import { REPO } from "../helpers/cli.ts";
import { parseExposition } from "../helpers/prometheus.ts";
import { type InProcessProxy, proxyConfigDir, startProxy, stopAll } from "./harness.ts";

/** A color that answers as frame does: /healthz, POST /frame/mcp, and 405 to the SDK's GET probe. */
function color(name: string) {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      const path = new URL(request.url).pathname;
      if (path === "/healthz") return Response.json({ status: "ok", service: "axe-frame", color: name, release: "1" });
      if (path === "/frame/mcp" && request.method !== "POST")
        return new Response("stateless", { status: 405, headers: { allow: "POST" } });
      return Response.json({ jsonrpc: "2.0", id: 1, result: {} });
    },
  });
}

const blue = color("blue");
const green = color("green");
let proxy: InProcessProxy;
let metricsPort: number;

beforeAll(async () => {
  // port 0: the kernel picks a free one and the proxy says which (no fixed port, no race for a "free" one)
  proxy = await startProxy(
    proxyConfigDir(`http://127.0.0.1:${blue.port}`, `http://127.0.0.1:${green.port}`, {
      metrics_listen: "127.0.0.1:0",
    }),
  );
  metricsPort = proxy.server.metricsPort!;
  expect(metricsPort).toBeGreaterThan(0);
});

afterAll(async () => {
  await stopAll();
  blue.stop(true);
  green.stop(true);
});

const scrape = async () => parseExposition(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());

describe("proxy metrics", () => {
  test("are served on loopback TCP for Prometheus, every known series at 0 before any request", async () => {
    const metrics = await scrape();
    for (const upstream of ["blue", "green", "fixed", "proxy"])
      for (const code of PROXY_CODES)
        expect(metrics.value("axe_proxy_requests_total", { upstream, code: String(code) })).toBe(0);
    for (const upstream of ["blue", "green", "fixed"])
      for (const kind of ["connect", "reset", "timeout", "broken"])
        expect(metrics.value("axe_proxy_upstream_errors_total", { upstream, kind })).toBe(0);
    for (const reason of PROXY_REFUSAL_REASONS) expect(metrics.value("axe_proxy_refusals_total", { reason })).toBe(0);
    for (const c of ["blue", "green"]) {
      expect(metrics.value("axe_proxy_request_duration_seconds_count", { route: "frame", color: c })).toBe(0);
      expect(metrics.value("axe_proxy_stream_probes_total", { color: c, method: "GET" })).toBe(0);
    }
    expect(metrics.series("axe_build_info")[0]).toMatchObject({ value: 1, labels: { commit: "source" } });
    expect(metrics.value("process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(metrics.types.get("axe_backup_last_success_age_seconds")).toBeUndefined(); // no backups handed in here
    for (const sample of metrics.samples) {
      expect(sample.labels).not.toHaveProperty("status");
      if (sample.labels.code) expect(sample.labels.code).toMatch(/^\d{3}$/);
    }
  });

  test("real codes by upstream, duration by route and color, and the 405 probe counted apart", async () => {
    const post = await fetch(`${proxy.url}/frame/mcp`, { method: "POST", body: "{}" });
    expect(post.status).toBe(200);
    const probe = await fetch(`${proxy.url}/frame/mcp`, { headers: { accept: "text/event-stream" } });
    expect(probe.status).toBe(405);
    expect((await fetch(`${proxy.url}/nothing-here`)).status).toBe(404);
    const metrics = await scrape();
    expect(metrics.value("axe_proxy_requests_total", { upstream: "blue", code: "200" })).toBe(1);
    expect(metrics.value("axe_proxy_requests_total", { upstream: "blue", code: "405" })).toBe(0);
    expect(metrics.value("axe_proxy_stream_probes_total", { color: "blue", method: "GET" })).toBe(1);
    expect(metrics.value("axe_proxy_requests_total", { upstream: "proxy", code: "404" })).toBe(1);
    expect(metrics.value("axe_proxy_request_duration_seconds_count", { route: "frame", color: "blue" })).toBe(1);
    expect(metrics.value("axe_proxy_request_duration_seconds_count", { route: "proxy", color: "none" })).toBe(1);
  });

  test("the TCP port answers this machine only, and says which install it is", async () => {
    const refused = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { headers: { host: "evil.example" } });
    expect(refused.status).toBe(403);
    const health = (await (await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).json()) as { instance: string };
    expect(health.instance).toBe(proxy.settings.instance);
  });

  test("a taken metrics port costs the metrics, never the proxy", async () => {
    const second = await startProxy(
      proxyConfigDir(`http://127.0.0.1:${blue.port}`, `http://127.0.0.1:${green.port}`, {
        metrics_listen: `127.0.0.1:${metricsPort}`,
      }),
    );
    expect(second.server.metricsPort).toBeUndefined();
    expect((await fetch(`${second.url}/healthz`)).status).toBe(200);
  });

  test("every refusal reason the proxy answers with starts at 0", () => {
    const answered = new Set<string>();
    for (const file of readdirSync(join(REPO, "src/proxy")).filter((f) => f.endsWith(".ts")))
      for (const m of readFileSync(join(REPO, "src/proxy", file), "utf8").matchAll(/error: "([a-z_]+)"/g))
        answered.add(m[1]!);
    // answers that are no refusal of the request: the route is missing, paused, or the upstream failed
    for (const other of ["no_route", "paused", "upstream_timeout", "upstream_unreachable"]) answered.delete(other);
    expect(answered.size).toBeGreaterThan(8);
    expect([...answered].filter((r) => !(PROXY_REFUSAL_REASONS as readonly string[]).includes(r)).sort()).toEqual([]);
  });
});
