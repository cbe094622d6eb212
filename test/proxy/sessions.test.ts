/**
 * MCP sessions stay on the color that issued them across a switch, until they end or the drain
 * time after the switch passes; drain waits for that, and pins outlive a proxy restart.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { drainColor, proxyStatus, switchLiveColor } from "../../src/proxy/admin-client.ts";
import { WAIT_MS } from "../helpers/wait.ts";
import { type InProcessProxy, proxyConfigDir, startProxy, startUpstream, stopAll, type Upstream } from "./harness.ts";

let proxy: InProcessProxy;
let blue: Upstream;
let green: Upstream;
const PIN_MS = 3_000;

beforeAll(async () => {
  [blue, green] = await Promise.all([startUpstream("blue"), startUpstream("green")]);
  proxy = await startProxy(proxyConfigDir(blue, green, { drain_timeout_ms: PIN_MS }));
});
afterAll(stopAll);

const initialize = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} });
const toolsList = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" });

async function mcp(body: string, session?: string, method = "POST", url = proxy.url) {
  const response = await fetch(`${url}/frame/mcp`, {
    method,
    ...(method === "POST" ? { body } : {}),
    headers: { "content-type": "application/json", ...(session ? { "mcp-session-id": session } : {}) },
  });
  const text = await response.text();
  return {
    status: response.status,
    session: response.headers.get("mcp-session-id"),
    body: text ? (JSON.parse(text) as { result?: { color: string } }) : {},
  };
}

test("a session keeps its color across a switch; new sessions go to the new live color", async () => {
  const first = await mcp(initialize);
  expect(first.session).toBe("blue-1");
  await switchLiveColor(proxy.socket, "green");
  // the fixture answers 404 to a session it did not issue, so 200 here means the pin held
  const pinned = await mcp(toolsList, "blue-1");
  expect(pinned.status).toBe(200);
  expect(pinned.body.result?.color).toBe("blue");
  const fresh = await mcp(initialize);
  expect(fresh.session).toBe("green-1");
  expect((await mcp(toolsList)).body.result?.color).toBe("green");
  expect((await proxyStatus(proxy.socket)).sessions).toBe(2);
});

test("DELETE ends a session's pin", async () => {
  expect((await mcp("", "green-1", "DELETE")).status).toBe(204);
  expect((await proxyStatus(proxy.socket)).sessions).toBe(1);
});

test("a drain waits for the pins' drain time, then releases them; the session then goes to the live color", async () => {
  const drained = await drainColor(proxy.socket, { color: "blue", timeoutMs: PIN_MS * 5 });
  expect(drained).toEqual({ color: "blue", drained: true, inflight: 0, sessions_released: 1, sessions: 0 });
  const moved = await mcp(toolsList, "blue-1");
  expect(moved.status).toBe(404);
  expect(moved.body).toMatchObject({ color: "green" });
});

test("a drain that times out leaves the pins, and they outlive a proxy restart", async () => {
  const dir = proxyConfigDir(blue, green, { drain_timeout_ms: 600_000 });
  const first = await startProxy(dir);
  const session = (await mcp(initialize, undefined, "POST", first.url)).session!;
  expect(session).toStartWith("blue-");
  await switchLiveColor(first.socket, "green");
  const short = await drainColor(first.socket, { color: "blue", timeoutMs: 100 });
  expect(short).toMatchObject({ drained: false, inflight: 0, sessions_released: 0, sessions: 1 });
  await first.server.stop();
  const second = await startProxy(dir);
  expect((await proxyStatus(second.socket)).sessions).toBe(1);
  const pinned = await mcp(toolsList, session, "POST", second.url);
  expect(pinned.status).toBe(200);
  expect(pinned.body.result?.color).toBe("blue");
});

test("draining the live color is refused", async () => {
  const refused = await drainColor(proxy.socket, { color: "green" }).catch((e: { code: string }) => e);
  expect((refused as { code: string }).code).toBe("PROXY_DRAIN_LIVE");
});

test("a drain waits for an open stream on the old color, bounded by its timeout", async () => {
  await switchLiveColor(proxy.socket, "blue");
  await switchLiveColor(proxy.socket, "green");
  await switchLiveColor(proxy.socket, "blue");
  const stream = await fetch(`${proxy.url}/frame/sse?n=10&gap=150`); // on blue
  await switchLiveColor(proxy.socket, "green");
  const short = await drainColor(proxy.socket, { color: "blue", timeoutMs: 50 });
  expect(short.drained).toBe(false);
  expect(short.inflight).toBe(1);
  const [long, text] = await Promise.all([
    drainColor(proxy.socket, { color: "blue", timeoutMs: WAIT_MS }),
    stream.text(),
  ]);
  expect(text).toContain("event: end\ndata: blue");
  expect(long).toMatchObject({ color: "blue", drained: true, inflight: 0 });
});
