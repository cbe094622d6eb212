/** Bad input over raw sockets: refused cleanly, and never forwarded to an upstream. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { parseTarget } from "../../src/proxy/request-guard.ts";
import { WAIT_MS } from "../helpers/wait.ts";
import { type InProcessProxy, proxyConfigDir, startProxy, startUpstream, stopAll, type Upstream } from "./harness.ts";

let blue: Upstream;
let proxy: InProcessProxy;
let port: number;

beforeAll(async () => {
  blue = await startUpstream("blue");
  proxy = await startProxy(
    proxyConfigDir(blue, "http://127.0.0.1:1", { max_body_bytes: 1000, max_header_bytes: 4096 }),
  );
  port = proxy.server.port;
});
afterAll(stopAll);

/** Sends raw bytes, returns what came back until the server closes (it does after each answer here) or WAIT_MS pass. */
function raw(data: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let out = "";
    const timer = setTimeout(() => socket.destroy(), WAIT_MS);
    socket.on("data", (d) => (out += d));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on("error", () => undefined);
    socket.write(data.replace("Host: x\r\n", "Host: x\r\nConnection: close\r\n"));
  });
}

const statusOf = (response: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);
/** What the upstream saw is echoed back; a refused request has no "color" in its answer. */
const reachedUpstream = (response: string) => response.includes('"color":"blue"');

describe("refused before any upstream sees it", () => {
  test("Content-Length together with Transfer-Encoding (request smuggling)", async () => {
    const response = await raw(
      "POST /frame/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /frame/echo HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    expect(statusOf(response)).toBe(400);
    expect(reachedUpstream(response)).toBe(false);
  });

  test("two different Content-Length headers", async () => {
    const response = await raw(
      "POST /frame/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    );
    expect(statusOf(response)).toBe(400);
    expect(reachedUpstream(response)).toBe(false);
  });

  test("a Transfer-Encoding other than chunked", async () => {
    const response = await raw(
      "POST /frame/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    );
    expect(statusOf(response)).toBeGreaterThanOrEqual(400);
    expect(reachedUpstream(response)).toBe(false);
  });

  test("a body over max_body_bytes is 413", async () => {
    const response = await raw(
      `POST /frame/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n${"a".repeat(5000)}`,
    );
    expect(statusOf(response)).toBe(413);
    expect(reachedUpstream(response)).toBe(false);
  });

  test("a chunked body over max_body_bytes is refused", async () => {
    const chunk = "a".repeat(800);
    const response = await raw(
      `POST /frame/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n${chunk}\r\n320\r\n${chunk}\r\n0\r\n\r\n`,
    );
    expect(statusOf(response)).toBe(413);
    expect(reachedUpstream(response)).toBe(false);
  });

  test("headers over max_header_bytes are 431, over Bun's 16 KiB too", async () => {
    const mid = await raw(`GET /frame/echo HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(6000)}\r\n\r\n`);
    expect(statusOf(mid)).toBe(431);
    expect(reachedUpstream(mid)).toBe(false);
    const huge = await raw(`GET /frame/echo HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`);
    expect(statusOf(huge)).toBe(431);
  });

  test("methods we do not proxy: TRACE is 405, a garbage method gets no 2xx", async () => {
    const trace = await raw("TRACE /frame/echo HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(statusOf(trace)).toBe(405);
    expect(trace.toLowerCase()).toContain("allow: get, head, post, put, patch, delete, options");
    expect(reachedUpstream(trace)).toBe(false);
    const garbage = await raw("FOO<> /frame/echo HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(reachedUpstream(garbage)).toBe(false);
    expect(statusOf(garbage) === 0 || statusOf(garbage) >= 400).toBe(true);
  });

  test("encoded separators that an upstream could decode into another path", async () => {
    for (const path of ["/frame/..%2fblueprint", "/frame/%2e%2e%5cadmin", "/frame/a%00b"]) {
      const response = await raw(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(statusOf(response)).toBeGreaterThanOrEqual(400);
      expect(reachedUpstream(response)).toBe(false);
    }
  });

  test("dot segments never reach frame as such: /frame/../x resolves to /x, which has no route", async () => {
    const response = await raw("GET /frame/../x HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(statusOf(response)).toBe(404);
    expect(reachedUpstream(response)).toBe(false);
  });

  test("a clean request on the same socket still works (the guard is not a blanket refusal)", async () => {
    const response = await raw("GET /frame/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(statusOf(response)).toBe(200);
    expect(reachedUpstream(response)).toBe(true);
  });
});

describe("parseTarget", () => {
  test("origin-form, absolute-form rewritten to origin-form, fragments dropped, dot segments resolved", () => {
    expect(parseTarget("http://x:1/frame/a?b=1")).toEqual({
      path: "/frame/a",
      pathAndQuery: "/frame/a?b=1",
      authority: "x:1",
    });
    expect(parseTarget("/frame/a")).toEqual({ path: "/frame/a", pathAndQuery: "/frame/a", authority: null });
    expect(parseTarget("http://x")).toEqual({ path: "/", pathAndQuery: "/", authority: "x" });
    expect(parseTarget("/frame/a?q=1#frag")).toEqual({
      path: "/frame/a",
      pathAndQuery: "/frame/a?q=1",
      authority: null,
    });
    expect(parseTarget("/frame/../x?y")).toEqual({ path: "/x", pathAndQuery: "/x?y", authority: null });
    expect(parseTarget("*")).toMatchObject({ status: 400 });
    expect(parseTarget("ftp://x/y")).toMatchObject({ status: 400 });
    expect(parseTarget("http://user@x/y")).toMatchObject({ status: 400 });
  });
});

describe("Host", () => {
  test("a request without Host (HTTP/1.0) is 400: the proxy never invents the upstream's loopback Host", async () => {
    const response = await raw("GET /frame/echo HTTP/1.0\r\n\r\n");
    expect(statusOf(response)).toBe(400);
    expect(response).toContain('"error":"bad_host"');
    expect(reachedUpstream(response)).toBe(false);
  });

  test("Connection naming Host, two Hosts, or a malformed Host is 400", async () => {
    for (const head of [
      "GET /frame/echo HTTP/1.1\r\nHost: x\r\nConnection: Host\r\n\r\n",
      "GET /frame/echo HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
      "GET /frame/echo HTTP/1.1\r\nHost: a b\r\n\r\n",
    ]) {
      const response = await raw(head);
      expect(statusOf(response)).toBe(400);
      expect(reachedUpstream(response)).toBe(false);
    }
  });

  test("an HTTP/1.0 request with Host is answered in a form HTTP/1.0 reads, and the connection closes", async () => {
    const response = await raw("GET /frame/echo HTTP/1.0\r\nHost: x\r\n\r\n");
    expect(statusOf(response)).toBe(200);
    expect(reachedUpstream(response)).toBe(true);
    expect(response.toLowerCase()).not.toContain("transfer-encoding: chunked");
  });
});
