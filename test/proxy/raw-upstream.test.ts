/**
 * The upstream client against a hand-written HTTP/1.1 server: interim 1xx answers, bodies
 * split into tiny writes, close-delimited bodies, a keep-alive connection the upstream drops,
 * and responses with ambiguous framing (which must become a 502, never reach the caller).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createServer, type Server, type Socket } from "node:net";
import { type InProcessProxy, proxyConfigDir, startProxy, stopAll } from "./harness.ts";
import { rawExchange } from "./raw-harness.ts";

let upstream: Server;
let proxy: InProcessProxy;
const sockets = new Set<Socket>();
/** Connections that carried a proxied request (health probes open their own). */
let connections = 0;

/** Answers by path; writes in pieces with short pauses so the proxy sees split reads. */
function answer(socket: Socket, path: string): void {
  const pieces = (parts: string[]) => {
    for (const [i, p] of parts.entries()) setTimeout(() => socket.write(p), i * 5);
  };
  if (path === "/frame/interim")
    socket.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nfinally");
  else if (path === "/frame/split")
    pieces([
      "HTTP/1.1 200 OK\r\nTrans",
      "fer-Encoding: chunked\r\n\r",
      "\n3\r\nab",
      "c\r\n",
      "2\r\nde\r\n0\r\n",
      "\r\n",
    ]);
  else if (path === "/frame/until-close")
    pieces(["HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread ", "until ", "close"]),
      setTimeout(() => socket.end(), 50);
  else if (path === "/frame/smuggle")
    socket.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  else if (path === "/frame/reason")
    socket.write("HTTP/1.1 200 Fine\xe9 By Me\r\nContent-Length: 2\r\n\r\nok", "latin1");
  else if (path === "/frame/drop-after") {
    socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    setTimeout(() => socket.destroy(), 5); // keep-alive promised, then the connection goes away
  } else socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
}

beforeAll(async () => {
  upstream = createServer((socket) => {
    let counted = false;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let buffer = "";
    socket.on("data", (data) => {
      buffer += data.toString("latin1");
      let end: number;
      while ((end = buffer.indexOf("\r\n\r\n")) >= 0) {
        const head = buffer.slice(0, end);
        buffer = buffer.slice(end + 4);
        if (!counted && !head.startsWith("GET /healthz")) {
          counted = true;
          connections++;
        }
        if (head.startsWith("GET /healthz"))
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{"status":"ok"}');
        else answer(socket, head.split(" ")[1]!);
      }
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
  proxy = await startProxy(proxyConfigDir(url, url));
});
afterAll(async () => {
  await stopAll();
  for (const s of sockets) s.destroy();
  upstream.close();
});

test("an interim 100 Continue is skipped; the final answer arrives", async () => {
  const response = await fetch(`${proxy.url}/frame/interim`);
  expect(response.status).toBe(200);
  expect(await response.text()).toBe("finally");
});

test("a chunked body split across reads arrives whole", async () => {
  expect(await (await fetch(`${proxy.url}/frame/split`)).text()).toBe("abcde");
});

test("a body delimited by the upstream closing arrives whole", async () => {
  expect(await (await fetch(`${proxy.url}/frame/until-close`)).text()).toBe("read until close");
});

test("a response with both Content-Length and Transfer-Encoding is a 502, not passed on", async () => {
  const response = await fetch(`${proxy.url}/frame/smuggle`);
  expect(response.status).toBe(502);
  expect(((await response.json()) as { error: string }).error).toBe("upstream_unreachable");
});

test("keep-alive: sequential requests share a connection; a dropped one is replaced, not failed", async () => {
  const before = connections;
  for (let i = 0; i < 5; i++)
    expect(await (await fetch(`${proxy.url}/frame/same-${i}`)).text()).toBe(`/frame/same-${i}`);
  expect(connections - before).toBeLessThanOrEqual(1);
  expect(await (await fetch(`${proxy.url}/frame/drop-after`)).text()).toBe("ok");
  await Bun.sleep(30);
  const after = await fetch(`${proxy.url}/frame/after-drop`);
  expect(after.status).toBe(200);
  expect(await after.text()).toBe("/frame/after-drop");
});

test("the caller gets the upstream's own reason phrase, whichever came last with its status", async () => {
  const port = Number(new URL(proxy.url).port);
  const request = (path: string, last = false) =>
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${last ? "Connection: close\r\n" : ""}\r\n`;
  const answer = await rawExchange(port, [
    request("/frame/plain"),
    request("/frame/reason"),
    request("/frame/plain-again"),
    request("/frame/reason", true),
  ]);
  expect([...answer.matchAll(/HTTP\/1\.1 [^\r]*/g)].map((m) => m[0])).toEqual([
    "HTTP/1.1 200 OK",
    "HTTP/1.1 200 Fine\xe9 By Me",
    "HTTP/1.1 200 OK",
    "HTTP/1.1 200 Fine\xe9 By Me",
  ]);
});
