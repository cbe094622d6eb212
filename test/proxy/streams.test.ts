/** Streams outlive the idle timeout; bodiless answers stay bodiless. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { WAIT_MS } from "../helpers/wait.ts";
import { type InProcessProxy, proxyConfigDir, startProxy, startUpstream, stopAll } from "./harness.ts";

let proxy: InProcessProxy;
let tunnel: InProcessProxy;

beforeAll(async () => {
  const [blue, green] = await Promise.all([startUpstream("blue"), startUpstream("green")]);
  proxy = await startProxy(proxyConfigDir(blue, green, { idle_timeout_s: 1 }));
  // the tunnel's peer as this test's loopback: appliance.yaml refuses a loopback trusted proxy (every local account's)
  tunnel = await startProxy(proxyConfigDir(blue, green), (s) => ({ ...s, trustedProxies: new Set(["127.0.0.1"]) }));
});
afterAll(stopAll);

test("an SSE stream quiet for longer than the idle timeout is not cut", async () => {
  // 1 s idle timeout; events 2.2 s apart: without the per-request exemption Bun would close it
  const response = await fetch(`${proxy.url}/frame/sse?n=2&gap=2200`);
  const text = await response.text();
  expect(text).toContain("data: blue 1");
  expect(text).toContain("event: end\ndata: blue");
});

test("an idle keep-alive connection is closed after the idle timeout", async () => {
  const closed = await new Promise<string>((resolve) => {
    const socket = connect(proxy.server.port, "127.0.0.1");
    let out = "";
    const guard = setTimeout(() => {
      socket.destroy();
      resolve("still open");
    }, WAIT_MS); // only a failing test waits this long: a loaded machine may run the 1 s timer late
    socket.on("data", (d) => (out += d));
    socket.on("close", () => {
      clearTimeout(guard);
      resolve(out.startsWith("HTTP/1.1 200") ? "closed after answering" : `closed: ${out.slice(0, 40)}`);
    });
    socket.write("GET /frame/small HTTP/1.1\r\nHost: x\r\n\r\n");
  });
  expect(closed).toBe("closed after answering");
});

test("HEAD keeps the upstream's headers and sends no body; 404 passes through", async () => {
  const head = await fetch(`${proxy.url}/frame/small`, { method: "HEAD" });
  expect(head.status).toBe(200);
  expect(head.headers.get("x-color")).toBe("blue");
  expect(await head.text()).toBe("");
  const missing = await fetch(`${proxy.url}/frame/missing`);
  expect(missing.status).toBe(404);
  expect(await missing.json()).toMatchObject({ color: "blue" });
});

test("a large request body streams through with back-pressure and arrives whole", async () => {
  const piece = new Uint8Array(64 * 1024).fill(120);
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= 48) return controller.close();
      sent++;
      controller.enqueue(piece);
    },
  });
  const response = await fetch(`${proxy.url}/frame/echo`, { method: "POST", body });
  expect(await response.json()).toMatchObject({ method: "POST", bodyBytes: 48 * 64 * 1024 });
});

test("X-Forwarded-* from a trusted proxy (the tunnel) are kept and extended", async () => {
  const response = await fetch(`${tunnel.url}/frame/echo`, {
    headers: { "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https", "x-forwarded-host": "axe.axelabs.ai" },
  });
  const headers = ((await response.json()) as { headers: Record<string, string> }).headers;
  expect(headers["x-forwarded-for"]).toBe("203.0.113.7, 127.0.0.1");
  expect(headers["x-forwarded-proto"]).toBe("https");
  expect(headers["x-forwarded-host"]).toBe("axe.axelabs.ai");
});
