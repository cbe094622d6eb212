/**
 * `status` on a real appliance (compiled proxy, blue and green on two releases, a real database)
 * as it goes from healthy to a stale backup, a standby down and the live color down; the
 * metrics of proxy and frame; and the status page in headless Chromium.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readColors } from "../../src/deploy/colors.ts";
import { colorUrl } from "../../src/deploy/switch.ts";
import { issueServiceToken } from "../../src/frame/auth/service-tokens.ts";
import { proxyMetrics } from "../../src/proxy/admin-client.ts";
import {
  type ApplianceUnderTest,
  releaseStreamFile,
  runAppliance,
  startAppliance,
  startLoad,
} from "../deploy/appliance.ts";
import { makeRelease } from "../deploy/fixtures.ts";
import { MAIN, REPO, runCli } from "../helpers/cli.ts";
import { mcpPost } from "../helpers/mcp.ts";
import { freePort } from "../helpers/ports.ts";
import { parseExposition } from "../helpers/prometheus.ts";
import { waitFor } from "../helpers/wait.ts";
import { pngSize, renderedDom, screenshot } from "./chromium.ts";
import { levels, recordSnapshots, statusJson } from "./fixtures.ts";

let app: ApplianceUnderTest;

beforeAll(async () => {
  app = await startAppliance();
  for (const version of ["1.0.0-a", "1.0.0-b"]) {
    const run = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease(version))).done;
    if (run.code !== 0) throw new Error(`deploy ${version} failed: ${run.stdout}\n${run.stderr}`);
  }
  recordSnapshots(app.config.paths.state, { local: 1, ring: 2, cold: 24 });
}, 180_000);

afterAll(async () => {
  await app?.stop();
});

const mcp = (token: string, body: unknown) => mcpPost(`${app.proxyUrl}/frame/mcp`, token, body);

/** The operator's page runs no script, loads nothing, submits nothing and is framed by no one, whatever text slips into it. */
function expectLockedDown(page: Response): void {
  const policy = page.headers.get("content-security-policy") ?? "";
  expect(policy).toContain("default-src 'none'");
  expect(policy).toContain("frame-ancestors 'none'");
  expect(policy).toContain("form-action 'none'");
  expect(policy).not.toContain("script-src");
  expect(page.headers.get("x-content-type-options")).toBe("nosniff");
  expect(page.headers.get("cache-control")).toBe("no-store");
}

describe("status on one machine", () => {
  test("healthy: green, exit 0, the live color and release, both colors, Postgres, the deploy, every tier, the metadata, disk", async () => {
    const { code, report } = await statusJson(app.config.dir);
    expect(report.checks.filter((c) => c.level !== "ok")).toEqual([]);
    expect(code).toBe(0);
    expect(report.level).toBe("ok");
    expect(report.customer).toBe("axe");
    expect(report.machine).toBe("axe-macmini"); // customers.yaml's machine, not the host name
    expect(report.live).toBe("blue");
    expect(report.release).toBe("1.0.0-b");
    expect(report.colors.blue).toMatchObject({ live: true, healthy: true, release: "1.0.0-b" });
    expect(report.colors.green).toMatchObject({ live: false, healthy: true, release: "1.0.0-a" });
    expect(report.database.reachable).toBe(true);
    expect(report.database.migration).toBeGreaterThan(0);
    expect(report.lastDeploy).toMatchObject({ action: "deploy", release: "1.0.0-b", ok: true });
    expect(report.backup.map((b) => [b.tier, b.enabled, b.problems])).toEqual([
      ["local", true, []],
      ["ring", true, []],
      ["cold", true, []],
    ]);
    expect(report.metadata).toMatchObject({
      ok: true,
      url: "https://axe.axelabs.ai/.well-known/oauth-protected-resource/frame/mcp",
    });
    expect(report.disk!.totalBytes).toBeGreaterThan(report.disk!.freeBytes);
    expect(Object.keys(levels(report))).toEqual([
      "proxy",
      "color:blue",
      "color:green",
      "database",
      "deploy",
      "backup:local",
      "backup:ring",
      "backup:cold",
      "audit",
      "metadata",
      "disk",
    ]);
    expect(levels(report).audit).toBe("ok"); // serve signed the audit chains' heads when it started

    const text = await runCli(["status", "--config", app.config.dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("axe on ");
    expect(text.stdout).toContain("GREEN");
    expect(text.stdout).not.toContain("\x1b["); // not a terminal: words, no colors
  }, 60_000);

  test("metrics: proxy requests, latency, switches and backup ages; frame tool calls by outcome and refusals by reason", async () => {
    const { token } = await issueServiceToken(app.db!.sql, app.config.paths.secrets, {
      customer: "axe",
      entity: "axe",
      role: "reader",
      name: "metrics",
      expiresInMs: 600_000,
    });
    const call = await mcp(token, {
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "whoami", arguments: {} },
    });
    expect(call.status).toBe(200);
    await call.text();
    const refused = await mcp("axe_st_not-a-real-token", { jsonrpc: "2.0", id: 2, method: "tools/list", params: {} });
    expect(refused.status).toBe(401);
    const load = await startLoad(app, 2);
    await load.answered(10);
    expect((await load.stop()).failures).toEqual([]);

    const proxy = await proxyMetrics(app.socket);
    expect(proxy).toMatch(/^axe_proxy_requests_total\{upstream="blue",code="200"\} [1-9]/m);
    expect(proxy).toMatch(/^axe_proxy_request_duration_seconds_count\{route="frame",color="blue"\} [1-9]/m);
    parseExposition(proxy); // the whole exposition, backup gauges and process metrics included, reads cleanly
    expect(proxy).toMatch(/^axe_proxy_switches_total [1-9]/m);
    for (const tier of ["local", "ring", "cold"])
      expect(proxy).toMatch(new RegExp(`^axe_backup_last_success_age_seconds\\{tier="${tier}"\\} \\d`, "m"));

    expect((await fetch(`${app.proxyUrl}/metrics`)).status).toBe(404); // frame's counters stay off the public side
    const frame = parseExposition(await (await fetch(`${colorUrl(app.config, "blue")}/metrics`)).text());
    expect(frame.value("axe_frame_tool_calls_total", { color: "blue", tool: "whoami", outcome: "ok" })).toBe(1);
    const refusals = frame.series("axe_frame_auth_refusals_total", { color: "blue", code: "401" });
    expect(refusals.reduce((sum, s) => sum + s.value, 0)).toBe(1);
    expect(frame.value("axe_frame_requests_total", { color: "blue", code: "200" })).toBeGreaterThan(0);
    expect(frame.value("axe_frame_request_duration_seconds_count", { color: "blue" })).toBeGreaterThan(0);
    expect(frame.series("axe_build_info", { color: "blue" })[0]?.labels.release).toBe(
      readColors(app.config.paths.data).blue?.version,
    );
  }, 60_000);

  test("the status page: on the admin socket and on a loopback port, rendered by headless Chromium with the latency chart", async () => {
    const load = await startLoad(app, 2);
    await load.answered(10);
    expect((await load.stop()).ok).toBeGreaterThan(0);
    const fromSocket = await fetch("http://axe-proxy/page", { unix: app.socket });
    expect(fromSocket.status).toBe(200);
    expectLockedDown(fromSocket);
    const socketHtml = await fromSocket.text();
    expect(socketHtml).toContain('id="latency-chart"');
    expect(Number(/data-minutes-with-requests="(\d+)"/.exec(socketHtml)?.[1])).toBeGreaterThan(0);

    const port = await freePort();
    const server = Bun.spawn(
      [process.execPath, MAIN, "status", "--serve", "--port", String(port), "--config", app.config.dir],
      {
        cwd: REPO,
        env: { ...process.env, AXE_CONFIG_DIR: "" },
        stdout: "ignore",
        stderr: "pipe",
      },
    );
    try {
      const url = `http://127.0.0.1:${port}/`;
      const page = await waitFor("status --serve to answer", () => fetch(url), { retryErrors: true, intervalMs: 100 });
      expect(page.status).toBe(200);
      expectLockedDown(page);
      const html = await page.text();
      expect(html).toContain('<span class="badge" id="level"');
      expect(html).toContain("GREEN");
      const json = await (await fetch(`${url}status.json`)).json();
      expect(json).toMatchObject({ customer: "axe", level: "ok" });
      expect((await fetch(`${url}nothing`)).status).toBe(404);

      const dom = await renderedDom(url);
      const chart = /<svg id="latency-chart"[\s\S]*?<\/svg>/.exec(dom)?.[0] ?? "";
      expect(chart).toMatch(/<circle class="dot95 weighted" data-count="[1-9]/);
      expect(chart).toMatch(/<rect class="count" data-count="[1-9]/);
      // both axes are labelled: latency on the left, requests per minute on the right
      expect(chart).toMatch(/<text class="axis latency-axis"[^>]*>0 ms<\/text>/);
      expect(chart).toMatch(/<text class="axis count-axis"[^>]*>[1-9]\d*<\/text>/);
      expect(chart).toContain(">req/min</text>");
      // the two deploys of this test are marked on the time line
      for (const version of ["1.0.0-a", "1.0.0-b"])
        expect(chart).toMatch(
          new RegExp(`<g class="marker deploy"[^>]*>.*?>deploy ${version.replaceAll(".", "\\.")}</text>`),
        );
      expect(dom).toMatch(/<table id="backups">[\s\S]*local[\s\S]*ring[\s\S]*cold/);
      // a fresh backup (local, 1 h of 26 h) is a green bar, most of it left
      const local = /<tr data-tier="local" data-level="ok">.*?<\/tr>/.exec(dom)?.[0] ?? "";
      expect(local).toMatch(/<i class="ok" style="width: ?9\d\.\d%; ?background: ?(#2f855a|rgb\(47, 133, 90\))/);
      expect(local).toMatch(/1\.\dh old, limit 26\.0h/);

      const shot = await screenshot(url);
      const bytes = new Uint8Array(readFileSync(shot));
      expect(pngSize(bytes)).toEqual({ width: 1200, height: 800 });
      expect(bytes.byteLength).toBeGreaterThan(10_000); // a blank page compresses to a few hundred bytes
      console.log(`status page screenshot: ${shot} (${bytes.byteLength} bytes)`);
      if (process.env.AXE_DOCS_SCREENSHOT) copyFileSync(shot, join(REPO, "docs", "status-page.png"));
    } finally {
      server.kill("SIGTERM");
      await server.exited;
    }
  }, 120_000);

  test("the latency history and the switches survive a proxy restart", async () => {
    const before = (await fetch("http://axe-proxy/latency", { unix: app.socket }).then((r) => r.json())) as {
      points: Array<{ count: number }>;
      switches: Array<{ to: string }>;
    };
    const requests = before.points.reduce((sum, p) => sum + p.count, 0);
    expect(requests).toBeGreaterThan(0);
    expect(before.switches.length).toBeGreaterThanOrEqual(2); // the two deploys' switches
    await app.backend.restart("proxy");
    const after = await waitFor(
      "the restarted proxy's latency history",
      () => fetch("http://axe-proxy/latency", { unix: app.socket }).then((r) => r.json() as Promise<typeof before>),
      { retryErrors: true, intervalMs: 50 },
    );
    expect(after.points.reduce((sum, p) => sum + p.count, 0)).toBeGreaterThanOrEqual(requests);
    expect(after.switches).toEqual(before.switches);
  }, 60_000);

  test("a stale local backup is red (exit 12) and names the tier; ring and cold late are yellow", async () => {
    recordSnapshots(app.config.paths.state, { local: 72 });
    const stale = await statusJson(app.config.dir);
    expect(stale.code).toBe(12);
    expect(stale.report.level).toBe("fail");
    const local = stale.report.checks.find((c) => c.name === "backup:local")!;
    expect(local.level).toBe("fail");
    expect(local.summary).toContain("over the limit");
    expect(stale.report.backup.find((b) => b.tier === "local")!.ageHours).toBeGreaterThan(26);

    recordSnapshots(app.config.paths.state, { local: 1, ring: 100 });
    const ringLate = await statusJson(app.config.dir);
    expect(levels(ringLate.report)).toMatchObject({ "backup:local": "ok", "backup:ring": "warn" });
    expect(ringLate.code).toBe(11);
    recordSnapshots(app.config.paths.state, { ring: 1 });
    expect((await statusJson(app.config.dir)).code).toBe(0);
  }, 60_000);

  test("the standby color down is yellow (exit 11); the live color down is red (exit 12)", async () => {
    await app.backend.stop("green");
    const standby = await statusJson(app.config.dir);
    expect(standby.code).toBe(11);
    expect(standby.report.colors.green).toMatchObject({ live: false, healthy: false, release: "1.0.0-a" });
    expect(levels(standby.report)).toMatchObject({
      "color:green": "warn",
      "color:blue": "ok",
      metadata: "ok",
      database: "ok",
    });

    await app.backend.stop("blue");
    const live = await statusJson(app.config.dir);
    expect(live.code).toBe(12);
    expect(live.report.colors.blue).toMatchObject({ live: true, healthy: false });
    expect(levels(live.report)).toMatchObject({ "color:blue": "fail", proxy: "ok" });
    const text = await runCli(["status", "--config", app.config.dir]);
    expect(text.code).toBe(12);
    expect(text.stdout).toMatch(/FAIL\s+color:blue\s+live but DOWN/);
  }, 60_000);
});
