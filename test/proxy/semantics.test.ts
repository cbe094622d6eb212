/**
 * What the caller gets, measured against real upstreams (issue 20): idle connections after
 * streams, retries that respect the session pin, timeouts that do not cut a slow answer, and logs
 * and metrics that say what the caller got, including the proxy's own refusals.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { proxyMetrics, proxyStatus } from "../../src/proxy/admin-client.ts";
import { type InProcessProxy, proxyConfigDir, startProxy, startUpstream, stopAll, type Upstream } from "./harness.ts";
import { type RawUpstream, rawExchange, rawUpstream, statuses } from "./raw-harness.ts";

let blue: Upstream;
let green: Upstream;

beforeAll(async () => {
  [blue, green] = await Promise.all([startUpstream("blue"), startUpstream("green")]);
});
afterAll(stopAll);

/** Sends `request` on a fresh connection, reads its whole answer, then waits (up to `boundMs`) for the proxy to close. */
function answerThenClose(port: number, request: string, boundMs: number): Promise<{ answer: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ answer, closed: false });
    }, boundMs);
    socket.on("data", (d) => (answer += d.toString("latin1")));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ answer, closed: true });
    });
    socket.on("error", () => undefined);
    socket.write(request);
  });
}

describe("idle timeout", () => {
  let proxy: InProcessProxy;
  beforeAll(async () => {
    proxy = await startProxy(proxyConfigDir(blue, green, { idle_timeout_s: 1, header_timeout_ms: 5_000 }));
  });

  test("is re-armed after a streamed answer: the connection closes once idle", async () => {
    const result = await answerThenClose(
      proxy.server.port,
      "GET /frame/sse?n=2&gap=10 HTTP/1.1\r\nHost: x\r\n\r\n",
      15_000,
    );
    expect(result.answer).toContain("event: end");
    expect(result.closed).toBe(true);
  });

  test("does not count while the proxy waits for the upstream: a slow answer longer than it arrives", async () => {
    const response = await fetch(`${proxy.url}/frame/slow?ms=2500`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ slow: true });
  });
});

describe("a retry never leaves the session's color", () => {
  let upstreamBlue: RawUpstream;
  let upstreamGreen: RawUpstream;
  let proxy: InProcessProxy;
  beforeAll(async () => {
    const json = (body: string, extra = "") =>
      `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;
    upstreamBlue = await rawUpstream((request) => {
      if (request.body.includes('"initialize"'))
        return void request.socket.write(json('{"color":"blue"}', "Mcp-Session-Id: blue-s1\r\n"));
      if (request.body.includes('"reset"')) return void request.socket.destroy(); // closed before any answer byte
      request.socket.write(json('{"color":"blue"}'));
    });
    upstreamGreen = await rawUpstream((request) =>
      request.socket.write("HTTP/1.1 404 Not Found\r\nContent-Length: 17\r\n\r\nSession not found"),
    );
    proxy = await startProxy(proxyConfigDir(upstreamBlue.url, upstreamGreen.url));
  });
  afterAll(() => {
    upstreamBlue.close();
    upstreamGreen.close();
  });

  test("a reset on the pinned color is not sent to the other color, and the pin holds", async () => {
    const post = (body: object, session?: string) =>
      fetch(`${proxy.url}/frame/mcp`, {
        method: "POST",
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, ...body }),
        headers: { "content-type": "application/json", ...(session ? { "mcp-session-id": session } : {}) },
      });
    const init = await post({ method: "initialize" });
    expect(init.headers.get("mcp-session-id")).toBe("blue-s1");
    const reset = await post({ method: "tools/list", params: { reset: true } }, "blue-s1");
    expect(reset.status).toBe(502);
    expect(upstreamGreen.requests.length).toBe(0);
    expect((await proxyStatus(proxy.socket)).sessions).toBe(1);
    const again = await post({ method: "tools/list" }, "blue-s1");
    expect(await again.json()).toEqual({ color: "blue" });
  });
});

describe("a stale pooled connection", () => {
  let stale: RawUpstream;
  let proxy: InProcessProxy;
  beforeAll(async () => {
    // answers the first request of each connection; a later one is closed unanswered (a keep-alive that timed out)
    const served = new WeakSet<object>();
    stale = await rawUpstream((request) => {
      if (served.has(request.socket)) return void request.socket.destroy();
      served.add(request.socket);
      request.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${request.path.length}\r\n\r\n${request.path}`);
    });
    proxy = await startProxy(proxyConfigDir(stale.url, stale.url));
  });
  afterAll(() => stale.close());

  test("an idempotent request is sent once more on a fresh connection; a tools/call is not", async () => {
    expect(await (await fetch(`${proxy.url}/frame/first`)).text()).toBe("/frame/first");
    const again = await fetch(`${proxy.url}/frame/second`);
    expect(again.status).toBe(200);
    expect(await again.text()).toBe("/frame/second");
    expect(await proxyMetrics(proxy.socket)).toMatch(/^axe_proxy_retries_total 1$/m);
    const call = await fetch(`${proxy.url}/frame/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x" } }),
    });
    expect(call.status).toBe(502);
    expect(stale.requests.filter((r) => r.path === "/frame/mcp").length).toBe(1);
  });
});

describe("logs and metrics say what the caller got", () => {
  let proxy: InProcessProxy;
  beforeAll(async () => {
    proxy = await startProxy(proxyConfigDir(blue, green, { max_body_bytes: 1_000 }));
  });

  test("a chunked upload over max_body_bytes is a 413 from the proxy, not a 502 from blue", async () => {
    const chunk = "a".repeat(800);
    const answer = await rawExchange(
      proxy.server.port,
      `POST /frame/echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: big-upload\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n${chunk}\r\n320\r\n${chunk}\r\n0\r\n\r\n`,
    );
    expect(statuses(answer)).toEqual([413]);
    const id = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(answer)?.[1];
    expect(proxy.accessLines().find((l) => l.id === id)).toMatchObject({ status: 413, color: "proxy" });
    const metrics = await proxyMetrics(proxy.socket);
    expect(metrics).toMatch(/^axe_proxy_refusals_total\{reason="body_too_large"\} 1$/m);
    expect(metrics).not.toMatch(/^axe_proxy_upstream_errors_total\{upstream="blue",kind="\w+"\} [1-9]/m);
  });

  test("an answer cut by the caller is logged as incomplete, with the bytes that went out", async () => {
    const controller = new AbortController();
    const response = await fetch(`${proxy.url}/frame/sse?n=50&gap=100`, {
      signal: controller.signal,
    });
    const id = response.headers.get("x-request-id");
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => undefined);
    let line: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && !line; i++) {
      await Bun.sleep(50);
      line = proxy.accessLines().find((l) => l.id === id);
    }
    expect(line).toMatchObject({ status: 200, color: "blue", completed: false });
    expect(line!.bytes as number).toBeGreaterThan(0);
    expect(await proxyMetrics(proxy.socket)).toMatch(/^axe_proxy_incomplete_total\{upstream="blue"\} [1-9]/m);
  });

  test("refusals answered before any routing (431, 400, 405) are logged and counted", async () => {
    await rawExchange(
      proxy.server.port,
      `GET /frame/echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: too-big\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`,
    );
    await rawExchange(
      proxy.server.port,
      "GET /frame/echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: folded\r\nX-A: a\r\n b\r\n\r\n",
    );
    await rawExchange(proxy.server.port, "TRACE /frame/echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: traced\r\n\r\n");
    const lines = proxy.accessLines();
    expect(lines.find((l) => l.status === 431)).toMatchObject({ color: "proxy" });
    expect(lines.find((l) => l.status === 400 && l.method === "GET")).toMatchObject({ color: "proxy" });
    expect(lines.find((l) => l.status === 405 && l.method === "TRACE")).toMatchObject({ color: "proxy" });
    expect(lines.some((l) => l.id === "traced")).toBe(false); // the caller's id is never ours
    const metrics = await proxyMetrics(proxy.socket);
    expect(metrics).toMatch(/^axe_proxy_refusals_total\{reason="headers_too_large"\} [1-9]/m);
    expect(metrics).toMatch(/^axe_proxy_refusals_total\{reason="bad_request"\} [1-9]/m);
    expect(metrics).toMatch(/^axe_proxy_refusals_total\{reason="method_not_allowed"\} [1-9]/m);
  });
});

describe("nits", () => {
  let proxy: InProcessProxy;
  beforeAll(async () => {
    proxy = await startProxy(proxyConfigDir(blue, green));
  });

  test("HEAD of a chunked resource answers without a Content-Length", async () => {
    const answer = await rawExchange(
      proxy.server.port,
      "HEAD /frame/sse?n=1&gap=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    expect(statuses(answer)).toEqual([200]);
    expect(answer.toLowerCase()).not.toContain("content-length");
  });

  test("an HTTP/1.0 caller with Host gets its own Host in X-Forwarded-Host", async () => {
    const answer = await rawExchange(proxy.server.port, "GET /frame/echo HTTP/1.0\r\nHost: pub.example\r\n\r\n");
    expect(answer).toContain('"x-forwarded-host":"pub.example"');
  });
});

describe("a keep-alive caller's heads, one after another", () => {
  let upstream: RawUpstream;
  let proxy: InProcessProxy;
  beforeAll(async () => {
    upstream = await rawUpstream((request) =>
      request.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${request.path.length}\r\n\r\n${request.path}`),
    );
    proxy = await startProxy(proxyConfigDir(upstream.url, upstream.url));
  });
  afterAll(() => upstream.close());

  test("each goes on as its own bytes said, however much it looks like the one before", async () => {
    // same lengths, names that differ in case or only inside, values that differ in their last byte
    const answer = await rawExchange(proxy.server.port, [
      "GET /frame/ab HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Kept: aaaa\r\nX-Aa-Z: one\r\n\r\n",
      "GET /frame/ac HTTP/1.1\r\nhost: 127.0.0.1\r\nx-kept: aaab\r\nX-Bb-Z: two\r\n\r\n",
      "GET /frame/ab HTTP/1.1\r\nHOST: 127.0.0.2\r\nX-Kept: aaaa \r\nX-Aa-Z: one\r\nConnection: close\r\n\r\n",
    ]);
    expect(statuses(answer)).toEqual([200, 200, 200]);
    const heads = upstream.requests.map((r) => r.head.split("\r\n").slice(0, 4));
    expect(heads).toEqual([
      ["GET /frame/ab HTTP/1.1", "Host: 127.0.0.1", "X-Kept: aaaa", "X-Aa-Z: one"],
      ["GET /frame/ac HTTP/1.1", "host: 127.0.0.1", "x-kept: aaab", "X-Bb-Z: two"],
      ["GET /frame/ab HTTP/1.1", "HOST: 127.0.0.2", "X-Kept: aaaa", "X-Aa-Z: one"],
    ]);
  });
});

describe("the caller's header lines, passed on as its own bytes", () => {
  let upstream: RawUpstream;
  let proxy: InProcessProxy;
  beforeAll(async () => {
    upstream = await rawUpstream((request) => request.socket.write("HTTP/1.1 204 No Content\r\n\r\n"));
    proxy = await startProxy(proxyConfigDir(upstream.url, upstream.url));
  });
  afterAll(() => upstream.close());

  /** The head the upstream got, its request id and stamp (different each time) written as ID. */
  const seen = (i: number) =>
    upstream.requests[i]!.head.replace(/(x-request-id|x-axe-forwarded): [^\r]*/g, "$1: ID").split("\r\n");
  /** Long enough that the kept lines go as bytes (forward-headers.ts copies them from 256 bytes on). */
  const TOKEN = "t0k.".repeat(80);
  const OURS = ["x-forwarded-for: 127.0.0.1", "x-forwarded-proto: http", "x-forwarded-host: h.test:1"];

  /** Sends the pieces on one connection, each after the proxy had time to read the one before (a head across reads). */
  async function sendInPieces(pieces: string[]): Promise<string> {
    const socket = connect(proxy.server.port, "127.0.0.1");
    let out = "";
    socket.on("data", (d) => (out += d.toString("latin1")));
    socket.on("error", () => undefined);
    const closed = new Promise((resolve) => socket.on("close", resolve));
    for (const piece of pieces) {
      socket.write(Buffer.from(piece, "latin1"));
      await Bun.sleep(50);
    }
    await closed;
    return out;
  }

  test("kept lines go on unchanged and in order around the dropped ones; odd spacing is written as before", async () => {
    const answer = await rawExchange(proxy.server.port, [
      // as the proxy would write them: passed on as bytes, hop-by-hop and forwarded ones cut out
      "GET /frame/a HTTP/1.1\r\nHost: h.test:1\r\nAccept: */*\r\nConnection: X-Hop\r\nX-Hop: 1\r\n" +
        `Authorization: Bearer ${TOKEN}\r\nX-Forwarded-For: 6.6.6.6\r\nKeep-Alive: 5\r\nMcp-Session-Id: s-1\r\n\r\n`,
      // not as the proxy would write them: no space, two spaces, trailing blanks, an empty value
      "GET /frame/b HTTP/1.1\r\nHost:h.test:1\r\nAccept:  */*\r\nX-Trail: v \t\r\nX-Empty:\r\nX-Last: z\r\n\r\n",
      // an absolute-form target naming another authority: its Host line is rewritten
      "GET http://other.test:2/frame/c HTTP/1.1\r\nHost: h.test:1\r\nX-Kept: k\r\nConnection: close\r\n\r\n",
    ]);
    expect(statuses(answer)).toEqual([204, 204, 204]);
    expect(seen(0)).toEqual([
      "GET /frame/a HTTP/1.1",
      "Host: h.test:1",
      "Accept: */*",
      `Authorization: Bearer ${TOKEN}`,
      "Mcp-Session-Id: s-1",
      ...OURS,
      "x-request-id: ID",
      "x-axe-forwarded: ID",
      "",
      "",
    ]);
    expect(seen(1)).toEqual([
      "GET /frame/b HTTP/1.1",
      "Host: h.test:1",
      "Accept: */*",
      "X-Trail: v",
      "X-Empty: ",
      "X-Last: z",
      ...OURS,
      "x-request-id: ID",
      "x-axe-forwarded: ID",
      "",
      "",
    ]);
    expect(seen(2).slice(0, 3)).toEqual(["GET /frame/c HTTP/1.1", "Host: other.test:2", "X-Kept: k"]);
  });

  test("a head that came in several reads, and a body after it, go on the same", async () => {
    const before = upstream.requests.length;
    const answer = await sendInPieces([
      "POST /frame/d HTTP/1.1\r\nHost: h.test:1\r\nX-One: o",
      "ne\r\nX-Two: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    ]);
    expect(statuses(answer)).toEqual([204]);
    expect(seen(before)).toEqual([
      "POST /frame/d HTTP/1.1",
      "Host: h.test:1",
      "X-One: one",
      "X-Two: 2",
      ...OURS,
      "x-request-id: ID",
      "x-axe-forwarded: ID",
      "content-length: 2",
      "",
      "",
    ]);
    expect(upstream.requests[before]!.body).toBe("hi");
  });
});
