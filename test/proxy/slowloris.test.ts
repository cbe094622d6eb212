/**
 * Slowloris: 500 callers that dribble their heads a line at a time hold no one up. A normal
 * caller is answered meanwhile, each request well inside the head timeout (the bound),
 * and every slow caller gets a 408 and is closed once its head is overdue.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { waitFor } from "../helpers/wait.ts";
import { type ChildProxy, proxyConfigDir, spawnProxy, startUpstream, stopAll } from "./harness.ts";

const SLOW = 500;
const HEAD_TIMEOUT_MS = 3_000;
let proxy: ChildProxy;
let port: number;

beforeAll(async () => {
  const [blue, green] = await Promise.all([startUpstream("blue"), startUpstream("green")]);
  // a child process: the slow callers' sockets here do not share an event loop with the proxy
  proxy = await spawnProxy(proxyConfigDir(blue, green, { client_head_timeout_ms: HEAD_TIMEOUT_MS, access_log: false }));
  port = Number(proxy.url.split(":").pop());
});
afterAll(stopAll);

/** A caller that sends one header line every 200 ms and never finishes its head. */
function slowCaller(): { socket: Socket; outcome: Promise<string> } {
  const socket = connect(port, "127.0.0.1");
  let answer = "";
  let timer: ReturnType<typeof setInterval> | undefined;
  const outcome = new Promise<string>((resolve) => {
    socket.on("connect", () => {
      socket.write("GET /frame/small HTTP/1.1\r\nHost: x\r\n");
      let n = 0;
      timer = setInterval(() => socket.write(`X-Slow-${n++}: a\r\n`), 200);
    });
    socket.on("data", (d) => (answer += d.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearInterval(timer);
      resolve(answer.slice(0, 12));
    });
  });
  return { socket, outcome };
}

test("500 slow callers do not delay a normal caller by the head timeout, and each gets a 408", async () => {
  const slow = Array.from({ length: SLOW }, slowCaller);
  // they are all connected and dribbling before the normal caller starts
  await waitFor(`${SLOW} slow callers to connect`, () => slow.every((s) => !s.socket.connecting));
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    const response = await fetch(`${proxy.url}/frame/small`);
    expect(response.status).toBe(200);
    await response.text();
    times.push(performance.now() - started);
  }
  expect(Math.max(...times)).toBeLessThan(HEAD_TIMEOUT_MS);
  const outcomes = await Promise.race([
    Promise.all(slow.map((s) => s.outcome)),
    Bun.sleep(HEAD_TIMEOUT_MS * 10).then(() => null),
  ]);
  for (const s of slow) s.socket.destroy();
  expect(outcomes).not.toBeNull();
  const counts: Record<string, number> = {};
  for (const o of outcomes!) counts[o] = (counts[o] ?? 0) + 1;
  expect(counts).toEqual({ "HTTP/1.1 408": SLOW });
});
