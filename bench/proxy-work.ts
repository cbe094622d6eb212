#!/usr/bin/env bun
/**
 * The proxy's own work per request, without sockets or a kernel: the bench's request and the Bun
 * upstream's answer (the same bytes wrk and bench/proxy/upstream.ts exchange) fed through a
 * ClientConnection, the ProxyHandler, an Exchange and a pooled UpstreamConnection whose sockets
 * only count what they are given. CPU time per request by process.cpuUsage: steady to a few
 * percent where bench/proxy.ts's figures move by tens, so it is how a change to the hot path is
 * judged before the socket benchmark (which holds the targets and runs nginx and Caddy beside
 * us). It has no peer of its own: what it measures is the part of a request that is ours alone.
 *
 *   bun bench/proxy-work.ts [--requests 200000] [--rounds 5] [--no-log] [--request wrk|claude]
 *
 * --no-log turns the access log off, as `proxy.access_log: false` does. --request claude sends
 * what a claude.ai connector's call looks like instead of wrk's one-header GET: a JSON-RPC POST
 * to /frame/mcp with eleven headers (a bearer token, an MCP session, Accept, User-Agent, ...)
 * and a small body, so the cost of the caller's header lines shows. For where the time goes,
 * run it under `bun --cpu-prof-md --cpu-prof-interval=100`.
 */
import { parseArgs } from "node:util";
import { AccessLog } from "../src/proxy/access-log.ts";
import { ClientConnection } from "../src/proxy/client-connection.ts";
import { ColorProver } from "../src/proxy/color-prover.ts";
import { ColorSelector } from "../src/proxy/color-selector.ts";
import { Metrics } from "../src/proxy/metrics.ts";
import { beginBatch, endBatch } from "../src/proxy/outbox.ts";
import { PauseController } from "../src/proxy/pause-controller.ts";
import { ProxyHandler } from "../src/proxy/proxy-handler.ts";
import { Router } from "../src/proxy/router.ts";
import { clientLimits, type ProxySettings } from "../src/proxy/settings.ts";
import type { UpstreamPool } from "../src/proxy/upstream.ts";
import { UpstreamConnection } from "../src/proxy/upstream-connection.ts";

const { values: flags } = parseArgs({
  options: {
    requests: { type: "string", default: "200000" },
    rounds: { type: "string", default: "5" },
    "no-log": { type: "boolean", default: false },
    request: { type: "string", default: "wrk" },
  },
});
const REQUESTS = Number(flags.requests);
const ROUNDS = Number(flags.rounds);

const UPSTREAM = "http://127.0.0.1:9";
const settings = {
  hostname: "127.0.0.1",
  port: 0,
  adminSocket: "",
  stateFile: "",
  instance: "bench",
  dataDir: "/nonexistent/axe-bench", // no current/<color>: no color proves itself
  secretsDir: "",
  metricsListen: undefined,
  upstreams: { blue: UPSTREAM, green: UPSTREAM },
  routes: [],
  frameWebsocket: false,
  trustedProxies: new Set<string>(),
  health: { path: "/healthz", intervalMs: 1000, timeoutMs: 1000, healthyThreshold: 2, unhealthyThreshold: 2 },
  drainTimeoutMs: 30_000,
  pauseTimeoutMs: 30_000,
  maxHeaderBytes: 32_768,
  maxHeaderCount: 100,
  maxLineBytes: 8_192,
  maxBodyBytes: 10_485_760,
  clientHeadTimeoutMs: 10_000,
  minBodyBytesPerS: 1_024,
  idleTimeoutS: 60,
  headerTimeoutMs: 30_000,
  accessLog: !flags["no-log"],
} as unknown as ProxySettings;

/** What wrk sends, and what Bun.serve answers with the bench upstream's 200 bytes. */
const WRK_REQUEST = "GET /frame/bench HTTP/1.1\r\nHost: 127.0.0.1:41234\r\n\r\n";
/** A claude.ai connector's tools/call as the tunnel passes it on (the token is a made-up JWT of a usual size). */
const CALL = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_record","arguments":{"id":"r-1"}}}';
const CLAUDE_REQUEST =
  "POST /frame/mcp HTTP/1.1\r\n" +
  "Host: frame.example.com\r\n" +
  "User-Agent: Claude-User (claude-code/1.0; +https://support.anthropic.com/)\r\n" +
  "Accept: application/json, text/event-stream\r\n" +
  "Accept-Encoding: gzip, deflate, br\r\n" +
  `Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.${"e".repeat(620)}.${"s".repeat(342)}\r\n` +
  "Content-Type: application/json\r\n" +
  `Content-Length: ${CALL.length}\r\n` +
  "Mcp-Session-Id: 0193b6a2-8c4e-7d1f-9a2b-3c4d5e6f7a8b\r\n" +
  "Mcp-Protocol-Version: 2025-06-18\r\n" +
  "Cf-Ray: 8e1f2a3b4c5d6e7f-FRA\r\n" +
  "Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n" +
  `\r\n${CALL}`;
if (flags.request !== "wrk" && flags.request !== "claude") throw new Error("--request is wrk or claude");
const REQUEST = Buffer.from(flags.request === "claude" ? CLAUDE_REQUEST : WRK_REQUEST, "latin1");
const BODY = `{"status":"ok","service":"bench","padding":"${"x".repeat(150)}"}\n`;
const RESPONSE = Buffer.from(
  `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nDate: Mon, 30 Nov 2026 13:00:00 GMT\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
  "latin1",
);

/** A socket that takes every byte at once and remembers how many it was given. */
function countingSocket() {
  return {
    written: 0,
    remoteAddress: "127.0.0.1",
    setNoDelay() {},
    pause() {},
    resume() {},
    shutdown() {},
    terminate() {},
    write(_data: Uint8Array, _offset = 0, length = _data.byteLength) {
      this.written += length;
      return length;
    },
  };
}

let logged = 0;
const accessLog = new AccessLog(settings.accessLog, (chunk) => {
  logged += chunk.length;
});
const handler = new ProxyHandler({
  settings,
  router: new Router(settings.routes, settings.frameWebsocket),
  selector: new ColorSelector("blue", settings.drainTimeoutMs),
  pause: new PauseController(settings.pauseTimeoutMs),
  metrics: new Metrics(),
  accessLog,
  // the bench's colors run no release that proves itself: no proof exchange, as with today's releases
  provers: {
    blue: new ColorProver("blue", "127.0.0.1", Buffer.alloc(32), settings.dataDir),
    green: new ColorProver("green", "127.0.0.1", Buffer.alloc(32), settings.dataDir),
  },
  isHealthy: () => true,
  markDown: () => undefined,
  stampLine: `x-axe-forwarded: ${"0".repeat(64)}\r\n`,
});
const clientSocket = countingSocket();
const client = new ClientConnection(clientSocket as never, handler, clientLimits(settings));
// one pooled upstream connection, open on a counting socket: every request reuses it
const pool = (handler as unknown as { pool(origin: string): UpstreamPool }).pool(UPSTREAM);
const upstream = new UpstreamConnection(pool);
const upstreamSocket = countingSocket();
upstream.onOpen(upstreamSocket as never);
pool.release(upstream);

/** One socket event, as the listeners run them. */
function event(work: () => void): void {
  beginBatch();
  try {
    work();
  } finally {
    endBatch();
  }
}

/** Requests between two flushes of the access log (one event-loop turn under wrk -c32 or so). */
const PER_TURN = 32;

function proxied(n: number): void {
  for (let i = 0; i < n; i++) {
    event(() => client.onData(REQUEST));
    event(() => upstream.onData(RESPONSE));
    if (i % PER_TURN === PER_TURN - 1) accessLog.flush();
  }
}

function usPerRequest(run: (n: number) => void): number {
  const before = process.cpuUsage();
  run(REQUESTS);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / REQUESTS;
}

// warm-up: JavaScriptCore compiles the hot path in tiers
proxied(REQUESTS);
const upstreamBefore = upstreamSocket.written;
const clientBefore = clientSocket.written;
proxied(1);
const perRequest = { upstream: upstreamSocket.written - upstreamBefore, client: clientSocket.written - clientBefore };
if (perRequest.client < RESPONSE.byteLength - 60 || perRequest.upstream < REQUEST.byteLength)
  throw new Error(`the proxy did not answer: ${JSON.stringify(perRequest)}`);

const ours: number[] = [];
for (let round = 0; round < ROUNDS; round++) ours.push(usPerRequest(proxied));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `proxy work per request (${flags.request}'s request, ${REQUESTS} requests x ${ROUNDS} rounds, access log ${settings.accessLog ? "on" : "off"}): ` +
    `${median(ours).toFixed(2)} us (rounds ${ours.map((x) => x.toFixed(2)).join(", ")}); bytes per request: ${perRequest.upstream} to the upstream, ${perRequest.client} to the caller; log ${logged} bytes`,
);
process.exit(0);
