/** MCP sessions stay on the color that issued them across a switch, until they end or are drained. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { drainColor, proxyStatus, switchLiveColor } from "../../src/proxy/admin-client.ts";
import { type InProcessProxy, proxyConfigDir, startProxy, startUpstream, stopAll } from "./harness.ts";

let proxy: InProcessProxy;

beforeAll(async () => {
  const [blue, green] = await Promise.all([startUpstream("blue"), startUpstream("green")]);
  proxy = await startProxy(proxyConfigDir(blue, green));
});
afterAll(stopAll);

const initialize = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} });
const toolsList = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" });

async function mcp(body: string, session?: string, method = "POST") {
  const response = await fetch(`${proxy.url}/frame/mcp`, {
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

test("draining the old color releases its sessions, which then go to the live color", async () => {
  const drained = await drainColor(proxy.socket, { color: "blue", timeoutMs: 2000 });
  expect(drained).toEqual({ color: "blue", drained: true, inflight: 0, sessions_released: 1 });
  const moved = await mcp(toolsList, "blue-1");
  expect(moved.status).toBe(404);
  expect(moved.body).toMatchObject({ color: "green" });
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
  const [long, text] = await Promise.all([drainColor(proxy.socket, { color: "blue", timeoutMs: 5000 }), stream.text()]);
  expect(text).toContain("event: end\ndata: blue");
  expect(long).toMatchObject({ color: "blue", drained: true, inflight: 0 });
});
