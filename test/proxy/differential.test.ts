/**
 * The same raw corpus through nginx (configured as bench/proxy.ts runs it) and through the proxy,
 * each in front of an upstream that records what it receives. Where they differ, the proxy must be
 * the stricter one (it refused what nginx passed on), or the case says why it is allowed to pass.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nginxConfig } from "../../bench/proxy/nginx-conf.ts";
import { freePort } from "../helpers/ports.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";
import { type InProcessProxy, proxyConfigDir, startProxy, stopAll } from "./harness.ts";
import { type RawUpstream, rawExchange, rawUpstream, statuses } from "./raw-harness.ts";

const NGINX = Bun.which("nginx") ?? Bun.which("nginx", { PATH: "/usr/sbin:/usr/bin" });
let upstream: RawUpstream;
let proxy: InProcessProxy;
let nginx: Bun.Subprocess | undefined;
let nginxPort = 0;

beforeAll(async () => {
  if (!NGINX) throw new Error("nginx is not installed (.ci/run installs it with apt-get)");
  upstream = await rawUpstream((request) => {
    const body = `seen ${request.path}`;
    request.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
  const port = Number(new URL(upstream.url).port);
  proxy = await startProxy(proxyConfigDir(upstream.url, upstream.url));
  const dir = join(tempDir("axe-nginx"), "nginx");
  mkdirSync(dir, { recursive: true });
  nginxPort = await freePort();
  writeFileSync(join(dir, "nginx.conf"), nginxConfig(dir, nginxPort, port));
  nginx = Bun.spawn([NGINX, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf"), "-p", dir], {
    stdout: "ignore",
    stderr: "pipe",
  });
  // nginx starts in milliseconds alone; asked until it answers (or exits), not a fixed number of times
  const up = await waitFor("nginx to answer on its port, or exit", async () => {
    if (nginx!.exitCode !== null) return "exited";
    const ready = await fetch(`http://127.0.0.1:${nginxPort}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    return ready && "up";
  }).catch((error: Error) => error.message);
  if (up !== "up")
    throw new Error(`nginx did not start (${up}): ${await new Response(nginx.stderr as ReadableStream).text()}`);
});

afterAll(async () => {
  nginx?.kill("SIGTERM");
  await nginx?.exited;
  await stopAll();
  upstream?.close();
});

/**
 * What a front end did with one request: the statuses the caller got, and whether the upstream saw
 * it (`seen()` asks again later). nginx keeps some connections open, so the exchange ends after 1.5 s.
 */
async function through(
  port: number,
  bytes: string,
  marker: string,
): Promise<{ statuses: number[]; forwarded: boolean; seen: () => boolean }> {
  const before = upstream.requests.length;
  const answer = await rawExchange(port, bytes, 1_500);
  const seen = () => upstream.requests.slice(before).some((r) => r.path.includes(marker));
  return { statuses: statuses(answer), forwarded: seen(), seen };
}

const long = "a".repeat(10_000);
/**
 * Name, bytes (MARK is replaced by a unique path), and, for a case where the proxy may pass on what
 * nginx refuses, why. None needs one today: the proxy refuses everything nginx refuses, and also
 * HTTP/1.0 without Host (issue 12.4), bare LF, control bytes, bare-LF chunk extensions, Connection:
 * Host, absolute-form of other schemes and HTTP/0.9, all of which nginx forwards.
 */
const CORPUS: Array<[string, string, string?]> = [
  ["plain GET", "GET MARK HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
  ["HTTP/1.0 with Host", "GET MARK HTTP/1.0\r\nHost: x\r\n\r\n"],
  ["HTTP/1.0 without Host", "GET MARK HTTP/1.0\r\n\r\n"],
  ["CL + TE", "POST MARK HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
  ["two Content-Lengths", "POST MARK HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"],
  ["TE chunked, identity", "POST MARK HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"],
  ["TE gzip, chunked", "POST MARK HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"],
  [
    "TE twice",
    "POST MARK HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  ],
  ["obs-fold", "GET MARK HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nConnection: close\r\n\r\n"],
  ["bare LF", "GET MARK HTTP/1.1\nHost: x\nConnection: close\n\n"],
  ["bare CR", "GET MARK HTTP/1.1\r\nHost: x\rX-B: y\r\nConnection: close\r\n\r\n"],
  ["NUL in a value", "GET MARK HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n"],
  ["control byte in a value", "GET MARK HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\nConnection: close\r\n\r\n"],
  ["space before the colon", "GET MARK HTTP/1.1\r\nHost: x\r\nX-A : b\r\nConnection: close\r\n\r\n"],
  [
    "overflowing chunk size",
    "POST MARK HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n",
  ],
  [
    "chunk extension ended by bare LF",
    "POST MARK HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b\nx\r\n0\r\n\r\n",
  ],
  [
    "trailers",
    "POST MARK HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\nx\r\n0\r\nX-T: 1\r\n\r\n",
  ],
  ["no Host", "GET MARK HTTP/1.1\r\nConnection: close\r\n\r\n"],
  ["two Hosts", "GET MARK HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n"],
  ["Connection: Host", "GET MARK HTTP/1.1\r\nHost: x\r\nConnection: Host, close\r\n\r\n"],
  ["absolute-form", "GET http://xMARK HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
  ["absolute-form of another scheme", "GET ftp://xMARK HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
  ["a 10 KB request line", `GET MARK?${long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`],
  [
    "pipelined after chunked",
    "POST MARK HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nGET MARK-2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  ],
  ["HTTP/0.9", "GET MARK\r\n\r\n"],
  ["HTTP/2.0 version", "GET MARK HTTP/2.0\r\nHost: x\r\n\r\n"],
  ["TRACE", "TRACE MARK HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
];

test("nginx and the proxy agree on the corpus, or the proxy is the stricter", async () => {
  const rows: string[] = [];
  const looser: string[] = [];
  for (const [i, [name, template, allowed]] of CORPUS.entries()) {
    const marker = `/frame/diff-${i}`;
    const bytes = template.replaceAll("MARK", marker);
    const ours = await through(proxy.server.port, bytes, marker);
    const theirs = await through(nginxPort, bytes, marker);
    rows.push(
      `${name}: proxy ${ours.statuses.join(",") || "-"}${ours.forwarded ? " fwd" : ""} | nginx ${theirs.statuses.join(",") || "-"}${theirs.forwarded ? " fwd" : ""}`,
    );
    // nginx's forward may reach the upstream after the 1.5 s on a loaded machine: asked until seen before
    // the proxy is called the looser (a case it really is looser on waits out the bound, then fails)
    if (ours.forwarded && !theirs.forwarded && !allowed) {
      const late = await waitFor(`nginx to forward ${name}`, theirs.seen).catch(() => false);
      if (!late) looser.push(name);
    }
  }
  console.log(rows.join("\n"));
  expect(looser).toEqual([]);
});
