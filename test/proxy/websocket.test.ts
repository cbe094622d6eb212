/**
 * WebSocket through the proxy: after the 101 the two sockets are one pipe. Open sockets stay on
 * the color they were opened on until they close, through a switch, and a drain waits for them;
 * a route that does not ask for upgrades refuses them.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { drainColor, switchLiveColor } from "../../src/proxy/admin-client.ts";
import { type InProcessProxy, proxyConfigDir, startProxy, startUpstream, stopAll } from "./harness.ts";
import { rawExchange, statuses } from "./raw-harness.ts";

let proxy: InProcessProxy;
let plain: InProcessProxy;

beforeAll(async () => {
  const [blue, green] = await Promise.all([startUpstream("blue"), startUpstream("green")]);
  proxy = await startProxy(proxyConfigDir(blue, green, { frame_websocket: true }));
  plain = await startProxy(proxyConfigDir(blue, green));
});
afterAll(stopAll);

/** Opens a WebSocket through the proxy and returns a function that sends a message and awaits the echo. */
async function open(url: string): Promise<{ echo: (text: string) => Promise<string>; close: () => Promise<void> }> {
  const ws = new WebSocket(`${url.replace("http", "ws")}/frame/ws`);
  const inbox: string[] = [];
  let waiting: ((text: string) => void) | null = null;
  ws.onmessage = (event) => {
    const text = String(event.data);
    if (waiting) {
      const wake = waiting;
      waiting = null;
      wake(text);
    } else inbox.push(text);
  };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("the WebSocket did not open"));
  });
  return {
    echo: (text) => {
      const reply = new Promise<string>((resolve) => {
        const queued = inbox.shift();
        if (queued !== undefined) resolve(queued);
        else waiting = resolve;
      });
      ws.send(text);
      return reply;
    },
    close: () =>
      new Promise((resolve) => {
        ws.onclose = () => resolve();
        ws.close();
      }),
  };
}

test("an open WebSocket stays on its color through a switch until it closes; new ones go to the new color", async () => {
  const first = await open(proxy.url);
  expect(await first.echo("hello")).toBe("blue: hello");
  await switchLiveColor(proxy.socket, "green");
  expect(await first.echo("after the switch")).toBe("blue: after the switch");
  const second = await open(proxy.url);
  expect(await second.echo("new")).toBe("green: new");
  // the old color is not drained while its socket is open
  const short = await drainColor(proxy.socket, { color: "blue", timeoutMs: 100 });
  expect(short).toMatchObject({ drained: false, inflight: 1 });
  const draining = drainColor(proxy.socket, { color: "blue", timeoutMs: 10_000 });
  expect(await first.echo("still here")).toBe("blue: still here");
  await first.close();
  expect(await draining).toMatchObject({ drained: true, inflight: 0 });
  expect(await second.echo("big ".repeat(20_000))).toBe(`green: ${"big ".repeat(20_000)}`);
  await second.close();
});

test("a route that does not ask for upgrades refuses a WebSocket upgrade instead of forwarding a plain GET", async () => {
  const answer = await rawExchange(
    plain.server.port,
    "GET /frame/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
  expect(statuses(answer)).toEqual([400]);
  expect(answer).toContain("upgrade_refused");
});
