/**
 * Request smuggling and response splitting, attacked over raw TCP on both sides: a caller that
 * writes exactly the bytes of each shape, and an upstream that records exactly what it receives.
 * Each case names what the caller got and what the upstream saw.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type InProcessProxy, proxyConfigDir, startProxy, stopAll } from "./harness.ts";
import { type RawRequest, type RawUpstream, rawExchange, rawUpstream, statuses } from "./raw-harness.ts";

let upstream: RawUpstream;
let proxy: InProcessProxy;
let port: number;
/** Set by a test that wants to know when the upstream wrote a late second response. */
let lateSent: (() => void) | null = null;

const ok = (body: string, extra = "") => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

function answer(request: RawRequest): void {
  const { socket, path } = request;
  const late = (first: string) => {
    socket.write(first);
    setTimeout(() => {
      socket.write(ok("STOLEN"));
      lateSent?.();
    }, 150);
  };
  switch (path) {
    case "/frame/204-late":
      return late("HTTP/1.1 204 No Content\r\n\r\n");
    case "/frame/304-late":
      return late("HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n");
    case "/frame/head-body":
      return void socket.write("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSTOLEN");
    case "/frame/stray-after":
      return void socket.write(`${ok("mine")}${ok("STOLEN")}`);
    case "/frame/early-close":
      return void socket.destroy();
    case "/frame/interim":
      return void socket.write(
        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
      );
    case "/frame/trailers":
      return void socket.write(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n4\r\nbody\r\n0\r\nX-T: secret\r\n\r\n",
      );
    case "/frame/hop":
      return void socket.write(ok("hop", "Connection: X-Hop\r\nX-Hop: secret\r\nX-Kept: yes\r\n"));
    case "/frame/keep-alive":
      return void socket.write(
        ok(
          "ka",
          "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Request-Id: theirs\r\nX-Kept: yes\r\nupgrade: h2c\r\n",
        ),
      );
    case "/frame/until-close":
      socket.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close");
      return void socket.end();
    case "/frame/dup-length":
      return void socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc");
    case "/frame/fold":
      return void socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\r\n b\r\n\r\nok");
    case "/frame/bare-lf":
      return void socket.write("HTTP/1.1 200 OK\nContent-Length: 2\n\nok");
    default: {
      const mine = ok(`${request.head.split(" ")[0]} ${path} ${request.body.length}`);
      // answered after the late stray bytes arrive: on a reused connection those would be read first
      if (path.startsWith("/frame/slow-")) setTimeout(() => socket.write(mine), 300);
      else socket.write(mine);
    }
  }
}

beforeAll(async () => {
  upstream = await rawUpstream(answer);
  proxy = await startProxy(proxyConfigDir(upstream.url, upstream.url, { max_header_count: 20, max_line_bytes: 1024 }));
  port = proxy.server.port;
});
afterAll(async () => {
  await stopAll();
  upstream.close();
});

/** Sends `bytes`; returns the caller's statuses and whether the upstream saw `marker` at all. */
async function attack(bytes: string, marker: string): Promise<{ statuses: number[]; seen: boolean; answer: string }> {
  const answer = await rawExchange(port, bytes);
  return { statuses: statuses(answer), seen: upstream.received().includes(marker), answer };
}

describe("refused with 400, never forwarded", () => {
  const cases: Array<[string, string]> = [
    [
      "CL + TE",
      "POST /frame/s1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    [
      "two equal Content-Lengths",
      "POST /frame/s2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
    ],
    [
      "two different Content-Lengths",
      "POST /frame/s3 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ],
    [
      "Transfer-Encoding: chunked, identity",
      "POST /frame/s4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    ],
    [
      "Transfer-Encoding: gzip, chunked",
      "POST /frame/s5 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ],
    [
      "Transfer-Encoding twice",
      "POST /frame/s6 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    [
      "Transfer-Encoding with a space before the colon",
      "POST /frame/s7 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    ],
    ["obs-fold", "GET /frame/s8 HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"],
    ["bare LF line ends", "GET /frame/s9 HTTP/1.1\nHost: x\n\n"],
    ["a bare CR in the head", "GET /frame/s10 HTTP/1.1\r\nHost: x\rX-B: y\r\n\r\n"],
    ["NUL in a header value", "GET /frame/s11 HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"],
    ["a control byte in a header value", "GET /frame/s12 HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n"],
    [
      "an overflowing chunk size",
      "POST /frame/s13 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n",
    ],
    [
      "a chunk extension ended by a bare LF",
      "POST /frame/s14 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b\nx\r\n0\r\n\r\n",
    ],
    [
      "a chunk size ended by a bare LF",
      "POST /frame/s15 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
    ],
    [
      "a space after the chunk size",
      "POST /frame/s16 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n",
    ],
    ["no Host", "GET /frame/s17 HTTP/1.1\r\n\r\n"],
    ["two Hosts", "GET /frame/s18 HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"],
    ["Connection: Host", "GET /frame/s19 HTTP/1.1\r\nHost: x\r\nConnection: Host\r\n\r\n"],
    ["an HTTP/1.0 request without Host", "GET /frame/s21 HTTP/1.0\r\n\r\n"],
    ["an absolute-form target of another scheme", "GET ftp://x/frame/s22 HTTP/1.1\r\nHost: x\r\n\r\n"],
  ];
  for (const [name, bytes] of cases)
    test(name, async () => {
      const marker = /\/frame\/s\d+/.exec(bytes)![0];
      const result = await attack(bytes, marker);
      expect(result.statuses).toEqual([400]);
      expect(result.seen).toBe(false);
    });

  test("an HTTP/0.9-style request line is 505", async () => {
    const result = await attack("GET /frame/s20\r\n\r\n", "/frame/s20");
    expect(result.statuses).toEqual([505]);
    expect(result.seen).toBe(false);
  });

  test("a smuggled second request after a refused one is never parsed", async () => {
    const result = await attack(
      "POST /frame/s23 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /frame/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
      "/frame/smuggled",
    );
    expect(result.statuses).toEqual([400]);
    expect(result.seen).toBe(false);
  });
});

describe("limits", () => {
  test("a request line over max_line_bytes is 414, a header line over it 431, too many headers 431", async () => {
    expect(
      (await attack(`GET /frame/l1?${"a".repeat(2000)} HTTP/1.1\r\nHost: x\r\n\r\n`, "/frame/l1")).statuses,
    ).toEqual([414]);
    const longLine = await attack(
      `GET /frame/l2 HTTP/1.1\r\nHost: x\r\nX-Long: ${"b".repeat(2000)}\r\n\r\n`,
      "/frame/l2",
    );
    expect(longLine.statuses).toEqual([431]);
    expect(longLine.seen).toBe(false);
    const many = Array.from({ length: 30 }, (_, i) => `X-H${i}: v\r\n`).join("");
    const tooMany = await attack(`GET /frame/l3 HTTP/1.1\r\nHost: x\r\n${many}\r\n`, "/frame/l3");
    expect(tooMany.statuses).toEqual([431]);
    expect(tooMany.seen).toBe(false);
  });
});

describe("rewritten on the way", () => {
  test("absolute-form becomes origin-form, and its authority the Host", async () => {
    const result = await attack(
      "GET http://h.example:8080/frame/a1?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "/frame/a1",
    );
    expect(result.statuses).toEqual([200]);
    const seen = upstream.requests.find((r) => r.path.startsWith("/frame/a1"))!;
    expect(seen.head).toStartWith("GET /frame/a1?q=1 HTTP/1.1\r\n");
    expect(seen.head).toContain("\r\nHost: h.example:8080\r\n");
  });

  test("a fragment is not forwarded", async () => {
    await attack("GET /frame/f1?x=1#top HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "/frame/f1");
    expect(upstream.requests.find((r) => r.path.startsWith("/frame/f1"))!.path).toBe("/frame/f1?x=1");
  });

  test("headers named in Connection are removed, and Connection itself", async () => {
    await attack(
      "GET /frame/c1 HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nX-Kept: k\r\n\r\n",
      "/frame/c1",
    );
    const seen = upstream.requests.find((r) => r.path === "/frame/c1")!.head.toLowerCase();
    expect(seen).not.toContain("x-secret");
    expect(seen).not.toContain("connection:");
    expect(seen).toContain("x-kept: k");
  });

  test("trailers are dropped and the chunked body re-framed; the next request on the connection is its own", async () => {
    const result = await attack(
      "POST /frame/t1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: evil\r\n\r\nGET /frame/t2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "/frame/t1",
    );
    expect(result.statuses).toEqual([200, 200]);
    expect(result.answer).toContain("POST /frame/t1 13"); // the upstream counts the chunked framing
    expect(result.answer).toContain("GET /frame/t2 0");
    const seen = upstream.requests.find((r) => r.path === "/frame/t1")!;
    expect(seen.body).toBe("3\r\nabc\r\n0\r\n\r\n");
    expect(upstream.received()).not.toContain("X-Trailer");
    expect(upstream.received()).not.toContain("ext=1");
  });

  test("Expect: 100-continue is answered by the proxy and not forwarded", async () => {
    const result = await attack(
      "POST /frame/e1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhi",
      "/frame/e1",
    );
    expect(result.statuses).toEqual([100, 200]);
    expect(upstream.requests.find((r) => r.path === "/frame/e1")!.head.toLowerCase()).not.toContain("expect");
  });
});

describe("pipelining", () => {
  test("pipelined requests are answered in order", async () => {
    const result = await attack(
      "GET /frame/p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /frame/p2 HTTP/1.1\r\nHost: x\r\n\r\nGET /frame/p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "/frame/p1",
    );
    expect(result.statuses).toEqual([200, 200, 200]);
    const order = ["/frame/p1", "/frame/p2", "/frame/p3"].map((p) => result.answer.indexOf(`GET ${p} 0`));
    expect(order.every((at, i) => at > 0 && (i === 0 || at > order[i - 1]!))).toBe(true);
  });

  test("a request pipelined after a chunked one is its own request", async () => {
    const result = await attack(
      "POST /frame/p4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /frame/p5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "/frame/p4",
    );
    expect(result.statuses).toEqual([200, 200]);
    expect(result.answer).toContain("POST /frame/p4 15");
    expect(result.answer).toContain("GET /frame/p5 0");
  });
});

describe("the upstream's answers", () => {
  test("an interim 103 is skipped; the final answer arrives", async () => {
    const result = await attack(
      "GET /frame/interim HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "/frame/interim",
    );
    expect(result.statuses).toEqual([200]);
    expect(result.answer).toEndWith("final");
  });

  test("ambiguous or malformed response heads are a 502, never passed on", async () => {
    for (const path of ["/frame/dup-length", "/frame/fold", "/frame/bare-lf"]) {
      const result = await attack(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, path);
      expect(result.statuses).toEqual([502]);
      expect(result.answer).toContain("upstream_unreachable");
    }
  });

  test("response trailers are dropped; Connection-named response headers too", async () => {
    const trailers = await attack(
      "GET /frame/trailers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "/frame/trailers",
    );
    expect(trailers.answer).toContain("4\r\nbody\r\n0\r\n\r\n");
    expect(trailers.answer).not.toContain("secret");
    expect(trailers.answer.toLowerCase()).not.toContain("trailer:");
    const hop = await attack("GET /frame/hop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "/frame/hop");
    expect(hop.answer.toLowerCase()).not.toContain("x-hop");
    expect(hop.answer.toLowerCase()).toContain("x-kept: yes");
  });

  test("hop-by-hop response headers are dropped from the upstream's own bytes; its X-Request-Id is replaced", async () => {
    const result = await attack(
      "GET /frame/keep-alive HTTP/1.1\r\nHost: x\r\nX-Request-Id: mine\r\nConnection: close\r\n\r\n",
      "/frame/keep-alive",
    );
    const head = result.answer.slice(0, result.answer.indexOf("\r\n\r\n")).toLowerCase();
    expect(head).not.toContain("keep-alive");
    expect(head).not.toContain("upgrade");
    expect(head).not.toContain("theirs");
    expect(head).not.toContain("x-request-id: mine"); // the caller's id is not ours either
    expect(head).toMatch(/x-request-id: [0-9a-f-]{36}\r\n/);
    expect(head).toContain("x-kept: yes");
    expect(head.match(/content-length:/g)).toEqual(["content-length:"]); // exactly one framing header
    expect(head).toContain("content-length: 2");
    expect(result.answer).toEndWith("\r\n\r\nka");
  });

  test("a body that runs until the upstream closes reaches an HTTP/1.1 caller chunked, on a kept connection", async () => {
    const result = await attack(
      "GET /frame/until-close HTTP/1.1\r\nHost: x\r\n\r\nGET /frame/u2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "/frame/until-close",
    );
    expect(result.statuses).toEqual([200, 200]);
    expect(result.answer).toContain("transfer-encoding: chunked");
    expect(result.answer).toContain("until close");
  });

  test("an upstream that closes before answering: a 502 with JSON", async () => {
    const result = await attack(
      "GET /frame/early-close HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "/frame/early-close",
    );
    expect(result.statuses).toEqual([502]);
    expect(result.answer).toContain("upstream_unreachable");
  });
});

describe("stray bytes never reach the next caller", () => {
  const own = async (path: string) => {
    const answer = await rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    return answer.slice(answer.indexOf("\r\n\r\n") + 4);
  };

  for (const [first, method] of [
    ["/frame/204-late", "GET"],
    ["/frame/304-late", "GET"],
  ] as const)
    test(`${first}: a second response 150 ms later goes nowhere, before or after it arrives`, async () => {
      const sent = new Promise<void>((resolve) => (lateSent = resolve));
      const answer = await rawExchange(port, `${method} ${first} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(statuses(answer)).toEqual([first.includes("204") ? 204 : 304]);
      expect(answer).not.toContain("STOLEN");
      expect(await own("/frame/slow-mine-before")).toBe("GET /frame/slow-mine-before 0");
      await sent;
      expect(await own("/frame/mine-after")).toBe("GET /frame/mine-after 0");
      lateSent = null;
    });

  test("a HEAD answered with a body: the body goes nowhere", async () => {
    const answer = await rawExchange(port, "HEAD /frame/head-body HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(statuses(answer)).toEqual([200]);
    expect(answer).not.toContain("STOLEN");
    expect(await own("/frame/slow-mine-head")).toBe("GET /frame/slow-mine-head 0");
  });

  test("bytes after a complete response close that connection", async () => {
    expect(await own("/frame/stray-after")).toBe("mine");
    expect(await own("/frame/mine-stray")).toBe("GET /frame/mine-stray 0");
  });
});
