/** The admin socket: 0600, zod-checked bodies, pause/resume, metrics, and clear errors. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { ProxyError } from "../../src/lib/errors.ts";
import { checkColor, pauseProxy, proxyMetrics, proxyStatus, resumeProxy } from "../../src/proxy/admin-client.ts";
import { freePort } from "../helpers/ports.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";
import { type InProcessProxy, proxyConfigDir, startProxy, startUpstream, stopAll } from "./harness.ts";

let proxy: InProcessProxy;
/** Holds a paused request for minutes: a test that resumes it never races the pause timeout. */
let patient: InProcessProxy;

beforeAll(async () => {
  const [blue, green] = await Promise.all([
    startUpstream("blue", { RELEASE: "2.0.0" }),
    startUpstream("green", { RELEASE: "2.1.0" }),
  ]);
  // short, so the test of the pause timeout is quick; no test that resumes a held request uses it
  proxy = await startProxy(proxyConfigDir(blue, green, { pause_timeout_ms: 1_000 }));
  patient = await startProxy(proxyConfigDir(blue, green, { pause_timeout_ms: 600_000 }));
});
afterAll(stopAll);

const admin = (path: string, init: RequestInit = {}) => fetch(`http://proxy${path}`, { unix: proxy.socket, ...init });

test("the socket is mode 0600 and status names both colors with their releases", async () => {
  expect(statSync(proxy.socket).mode & 0o777).toBe(0o600);
  const status = await proxyStatus(proxy.socket);
  expect(status).toMatchObject({ service: "axe-proxy", live: "blue", paused: false });
  expect(status.colors.blue).toMatchObject({ healthy: true, release: "2.0.0", inflight: 0 });
  expect(status.colors.green).toMatchObject({ healthy: true, release: "2.1.0" });
});

test("bad bodies are 400 with a message; unknown endpoints 404", async () => {
  const bad = await admin("/switch", { method: "POST", body: JSON.stringify({ color: "purple" }) });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: { code: string; message: string } }).error).toMatchObject({
    code: "ADMIN_BAD_BODY",
  });
  const extra = await admin("/switch", { method: "POST", body: JSON.stringify({ color: "green", force: true }) });
  expect(extra.status).toBe(400);
  const notJson = await admin("/drain", { method: "POST", body: "{" });
  expect(notJson.status).toBe(400);
  expect((await admin("/nope")).status).toBe(404);
  expect((await proxyStatus(proxy.socket)).live).toBe("blue");
});

test("pause holds requests until resume", async () => {
  expect((await pauseProxy(patient.socket)).paused).toBe(true);
  let answered = false;
  const held = fetch(`${patient.url}/frame/small`).then((r) => {
    answered = true;
    return r;
  });
  // pause again (it changes nothing) until it says the request is held
  await waitFor("the request to be held", async () => (await pauseProxy(patient.socket)).held === 1);
  expect(answered).toBe(false);
  expect((await proxyStatus(patient.socket)).paused).toBe(true);
  expect((await resumeProxy(patient.socket)).held).toBe(1);
  expect((await held).status).toBe(200);
});

test("a request held longer than pause_timeout_ms gets 503 with Retry-After", async () => {
  await pauseProxy(proxy.socket);
  const response = await fetch(`${proxy.url}/frame/small`);
  await resumeProxy(proxy.socket);
  expect(response.status).toBe(503);
  expect(response.headers.get("retry-after")).toBe("1");
  expect(((await response.json()) as { error: string }).error).toBe("paused");
});

test("metrics are Prometheus text with the request counters", async () => {
  await fetch(`${proxy.url}/frame/small`);
  const text = await proxyMetrics(proxy.socket);
  expect(text).toContain("# TYPE axe_proxy_requests_total counter");
  expect(text).toMatch(/axe_proxy_requests_total\{upstream="blue",code="200"\} [1-9]/);
  expect(text).toContain('axe_proxy_live{color="blue"} 1');
  expect(text).toContain("axe_proxy_pause_timeouts_total 1");
  expect(text).toMatch(/axe_proxy_request_duration_seconds_count\{route="frame",color="blue"\} [1-9]/);
});

test("a socket nobody listens on is PROXY_UNREACHABLE with a hint", async () => {
  const error = await proxyStatus(join(tempDir("axe-nosock"), "proxy.sock")).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ProxyError);
  expect((error as ProxyError).code).toBe("PROXY_UNREACHABLE");
  expect((error as ProxyError).hint).toContain("axe-appliance proxy run");
});

test("a second proxy on the same socket is refused", async () => {
  const error = await startProxy(
    proxyConfigDir("http://127.0.0.1:1", "http://127.0.0.1:2", { admin_socket: proxy.socket }),
  ).catch((e: unknown) => e);
  expect((error as ProxyError).code).toBe("PROXY_RUNNING");
});

test("POST /check probes a color now: a restarted color is seen healthy without waiting for the timer", async () => {
  const port = await freePort();
  const quiet = await startProxy(
    proxyConfigDir(`http://127.0.0.1:${port}`, `http://127.0.0.1:${port}`, {
      // the timer would probe again only in 10 minutes
      health: { interval_ms: 600_000, timeout_ms: 500, healthy_threshold: 2, unhealthy_threshold: 2 },
    }),
  );
  expect((await proxyStatus(quiet.socket)).colors.green.healthy).toBe(false); // nothing listened at start
  const green = Bun.serve({
    hostname: "127.0.0.1",
    port,
    fetch: () => Response.json({ status: "ok", service: "axe-frame", color: "green", release: "2.0.0" }),
  });
  try {
    expect(await checkColor(quiet.socket, "green")).toMatchObject({ healthy: false }); // one good answer of two
    expect(await checkColor(quiet.socket, "green")).toMatchObject({ healthy: true, release: "2.0.0" });
    expect((await proxyStatus(quiet.socket)).colors.green).toMatchObject({ healthy: true, release: "2.0.0" });
  } finally {
    green.stop(true);
  }
});
