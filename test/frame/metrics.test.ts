import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FRAME_CODES, REFUSAL_REASONS } from "../../src/frame/metrics.ts";
import { TOOLS } from "../../src/frame/tools/index.ts";
import { REPO } from "../helpers/cli.ts";
import { parseExposition } from "../helpers/prometheus.ts";
import { mcpClient, rpc, startTestFrame, type TestFrame } from "./harness.ts";

let running: TestFrame;

beforeAll(async () => {
  running = await startTestFrame({ noAuth: true });
}, 60_000);

afterAll(async () => {
  await running?.close();
});

const scrape = async () => parseExposition(await (await fetch(`${running.base}/metrics`)).text());

describe("frame /metrics", () => {
  test("before any request every known series is there at 0, with the build and the process", async () => {
    const metrics = await scrape();
    const color = "blue"; // the harness starts blue
    for (const code of FRAME_CODES)
      expect(metrics.value("axe_frame_requests_total", { code: String(code), color })).toBe(0);
    for (const tool of TOOLS)
      for (const outcome of ["ok", "error", "denied"])
        expect(metrics.value("axe_frame_tool_calls_total", { tool: tool.name, outcome, color })).toBe(0);
    for (const [reason, code] of Object.entries(REFUSAL_REASONS))
      expect(metrics.value("axe_frame_auth_refusals_total", { reason, code: String(code), color })).toBe(0);
    const build = metrics.series("axe_build_info");
    expect(build.length).toBe(1);
    expect(build[0]).toMatchObject({ value: 1, labels: { color, release: expect.any(String), commit: "source" } });
    expect(metrics.types.get("process_cpu_seconds_total")).toBe("counter");
    expect(metrics.value("process_resident_memory_bytes", { color })).toBeGreaterThan(0);
    // one label convention: HTTP codes are `code`, never a class or `status`
    for (const sample of metrics.samples) {
      expect(sample.labels).not.toHaveProperty("status");
      if (sample.labels.code) expect(sample.labels.code).toMatch(/^\d{3}$/);
    }
  });

  test("the SDK's GET probe (405) is counted apart, never as an error; calls and codes count", async () => {
    const client = await mcpClient(running.mcpUrl);
    await client.callTool({ name: "whoami", arguments: {} });
    await client.close();
    const probe = await fetch(running.mcpUrl, { headers: { accept: "text/event-stream" } });
    expect(probe.status).toBe(405);
    expect((await rpc(running.mcpUrl, "{not json", { "content-type": "text/plain" })).status).toBe(415);
    const metrics = await scrape();
    const color = "blue"; // the harness starts blue
    expect(metrics.value("axe_frame_stream_probes_total", { method: "GET", color })).toBeGreaterThanOrEqual(1);
    expect(metrics.series("axe_frame_requests_total", { code: "405" })).toEqual([]);
    expect(metrics.value("axe_frame_requests_total", { code: "200", color })).toBeGreaterThanOrEqual(2);
    expect(metrics.value("axe_frame_requests_total", { code: "415", color })).toBe(1);
    expect(metrics.value("axe_frame_tool_calls_total", { tool: "whoami", outcome: "ok", color })).toBe(1);
    const served = metrics.series("axe_frame_requests_total").reduce((sum, s) => sum + s.value, 0);
    expect(metrics.value("axe_frame_request_duration_seconds_count", { color })).toBe(served);
  });

  test("a tool name the caller made up is no series of its own: any local account reads /metrics, and names are unbounded", async () => {
    for (let i = 0; i < 3; i++)
      for (const args of [[], {}]) {
        const body = { jsonrpc: "2.0", id: i, method: "tools/call", params: { name: `made_up_${i}`, arguments: args } };
        const response = await rpc(running.mcpUrl, body);
        expect(response.status).toBe(200);
        await response.text();
      }
    const metrics = await scrape();
    const tools = new Set(metrics.series("axe_frame_tool_calls_total").map((s) => s.labels.tool));
    expect([...tools].filter((t) => t?.startsWith("made_up"))).toEqual([]);
    expect(tools.size).toBeLessThanOrEqual(TOOLS.length + 1);
  });

  test("the exposition checker refuses what a scraper would trip on", () => {
    const typed = "# TYPE a_total counter\n";
    expect(() => parseExposition(`${typed}a_total{code="200" 1\n`)).toThrow();
    expect(() => parseExposition("a_total 1\n")).toThrow(/before \(or without\) its # TYPE/);
    expect(() => parseExposition(`${typed}a_total{x="1"} one\n`)).toThrow(/not a number/);
    expect(() => parseExposition(`${typed}a_total{x="1"} 1\na_total{x="1"} 2\n`)).toThrow(/twice/);
    expect(() => parseExposition("# TYPE a counter\na 1\n")).toThrow(/_total/);
    const histogram = '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n';
    expect(() => parseExposition(histogram)).toThrow(/ascending/);
  });
});

describe("the refusal reasons frame counts", () => {
  test("are every reason src/frame refuses with, so none is absent from a dashboard", () => {
    const thrown = new Set<string>();
    const call = /(?:new AuthError|new IdentifiedRefusal|invalid|forbid|refuse)\(\s*(?:\d{3},\s*)?"([a-z_]+)"/g;
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
      );
    for (const file of walk(join(REPO, "src/frame")))
      for (const match of readFileSync(file, "utf8").matchAll(call)) thrown.add(match[1]!);
    expect(thrown.size).toBeGreaterThan(20); // the scan finds them (a broken pattern would find none)
    expect([...thrown].filter((reason) => !(reason in REFUSAL_REASONS)).sort()).toEqual([]);
  });
});
