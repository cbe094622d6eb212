/** The small parts on their own: router, color selector, pause, request id, headers, retry policy, state file. */
import { afterEach, describe, expect, setSystemTime, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/lib/errors.ts";
import { hundredths } from "../../src/proxy/access-log.ts";
import { ColorSelector } from "../../src/proxy/color-selector.ts";
import {
  isEventStream,
  READ_REQUEST_HEADERS,
  upstreamRequestBytes,
  upstreamRequestHead,
} from "../../src/proxy/forward-headers.ts";
import { HeadCollector, headerMap } from "../../src/proxy/head-collector.ts";
import { HttpParser, ERROR as LLHTTP, REQUEST } from "../../src/proxy/llhttp.ts";
import { batch, Outbox } from "../../src/proxy/outbox.ts";
import { PauseController } from "../../src/proxy/pause-controller.ts";
import { requestId } from "../../src/proxy/request-id.ts";
import { contentLength, mayBeEventStream } from "../../src/proxy/response-head.ts";
import { callsATool } from "../../src/proxy/retry-policy.ts";
import { Router } from "../../src/proxy/router.ts";
import { readProxyState, writeProxyState } from "../../src/proxy/state-file.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("Router", () => {
  const router = new Router([
    { prefix: "/blueprint/", upstream: "http://127.0.0.1:3100" },
    { prefix: "/frame/admin", upstream: "http://127.0.0.1:3200" },
  ]);
  test("frame paths, the well-known URLs, fixed prefixes, longest first, and nothing else", () => {
    expect(router.match("/frame/mcp")).toEqual({ kind: "frame" });
    expect(router.match("/frame")).toEqual({ kind: "frame" });
    expect(router.match("/.well-known/oauth-protected-resource")).toEqual({ kind: "frame" });
    expect(router.match("/.well-known/oauth-protected-resource/frame/mcp")).toEqual({ kind: "frame" });
    expect(router.match("/blueprint")).toEqual({ kind: "fixed", upstream: "http://127.0.0.1:3100" });
    expect(router.match("/blueprint/x")).toEqual({ kind: "fixed", upstream: "http://127.0.0.1:3100" });
    expect(router.match("/frame/admin/x")).toEqual({ kind: "fixed", upstream: "http://127.0.0.1:3200" });
    expect(router.match("/frameworks")).toBeUndefined();
    expect(router.match("/.well-known/oauth-protected-resourceX")).toBeUndefined();
    expect(router.match("/")).toBeUndefined();
  });
});

describe("ColorSelector", () => {
  const T0 = Date.UTC(2026, 0, 1);
  // The selector reads the wall clock: these tests set it (setSystemTime), so a test process that
  // a loaded machine leaves unscheduled past the drain time cannot see a pin expire early.
  afterEach(() => void setSystemTime());

  test("pins outlive a switch only for the drain time", () => {
    setSystemTime(T0);
    const selector = new ColorSelector("blue", 100);
    selector.pin("s1", "blue");
    expect(selector.switchTo("green")).toBe(true);
    expect(selector.pick("s1")).toBe("blue");
    expect(selector.pick(null)).toBe("green");
    expect(selector.pick("unknown")).toBe("green");
    setSystemTime(T0 + 99);
    expect(selector.pick("s1")).toBe("blue");
    setSystemTime(T0 + 100);
    expect(selector.pick("s1")).toBe("green");
    expect(selector.sessions).toBe(0);
    expect(selector.switchTo("green")).toBe(false);
  });

  test("drain resolves when the last request finishes, or not drained on timeout", async () => {
    const selector = new ColorSelector("blue", 100);
    selector.started("green");
    expect(await selector.drain("green", 20)).toEqual({ drained: false, released: 0 });
    const idle = selector.drain("green", 5000);
    selector.finished("green");
    expect(await idle).toEqual({ drained: true, released: 0 });
  });

  test("drain waits for pins to the old color until their drain time, then releases them", async () => {
    setSystemTime(T0);
    const selector = new ColorSelector("blue", 150);
    selector.pin("s1", "blue");
    selector.switchTo("green");
    // each drain sleeps (real timers) until its clock says its time has come: the clock moves only here
    const short = selector.drain("blue", 20);
    setSystemTime(T0 + 20);
    expect(await short).toEqual({ drained: false, released: 0 });
    expect(selector.pick("s1")).toBe("blue");
    const long = selector.drain("blue", 5000);
    expect(selector.sessions).toBe(1);
    setSystemTime(T0 + 150);
    expect(await long).toEqual({ drained: true, released: 1 });
    expect(selector.pick("s1")).toBe("green");
  });

  test("a snapshot restores the pins and drain times", () => {
    const selector = new ColorSelector("blue", 60_000);
    selector.pin("s1", "blue");
    selector.switchTo("green");
    const again = new ColorSelector("green", 60_000, selector.snapshot());
    expect(again.pick("s1")).toBe("blue");
    expect(again.sessions).toBe(1);
  });
});

describe("PauseController", () => {
  test("holds until resume, or times out", async () => {
    const pause = new PauseController(50);
    pause.pause();
    const released = pause.wait();
    expect(pause.held).toBe(1);
    expect(pause.resume()).toBe(1);
    expect(await released).toBe(true);
    pause.pause();
    expect(await pause.wait()).toBe(false);
    expect(pause.held).toBe(0);
  });
});

describe("headers", () => {
  test("a request id is kept only from a trusted proxy, and only when sane", () => {
    expect(requestId("abc-123", true)).toBe("abc-123");
    expect(requestId("abc-123", false)).toMatch(/^[0-9a-f-]{36}$/); // a caller cannot choose its audit rows' id
    expect(requestId(null, true)).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestId("x".repeat(200), true)).not.toBe("x".repeat(200));
  });

  test("a trusted proxy's X-Forwarded-* are extended; anyone else's are replaced; hop-by-hop and framing dropped", () => {
    const lines = (head: string) =>
      new Headers(
        head
          .trim()
          .split("\r\n")
          .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)] as [string, string]),
      );
    const incoming = new Headers({
      host: "h",
      "x-forwarded-for": "9.9.9.9",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "pub",
      forwarded: "for=1",
      upgrade: "h2c",
      te: "trailers",
      "content-length": "5",
      connection: "x-hop",
      "x-hop": "1",
      "x-kept": "k",
    });
    const names = [...incoming.keys()];
    const values = names.map((n) => incoming.get(n)!);
    const head = (peer: string, trusted: boolean) =>
      lines(
        upstreamRequestHead(names, names, values, incoming.toJSON(), {
          peer,
          trusted,
          requestId: "r",
          host: "h",
          stamp: "",
        }),
      );
    const trusted = head("10.0.0.1", true);
    expect(trusted.get("x-forwarded-for")).toBe("9.9.9.9, 10.0.0.1");
    expect(trusted.get("x-forwarded-proto")).toBe("https");
    expect(trusted.get("x-forwarded-host")).toBe("pub");
    expect(trusted.get("forwarded")).toBe("for=1");
    const untrusted = head("10.0.0.2", false);
    expect(untrusted.get("x-forwarded-for")).toBe("10.0.0.2");
    expect(untrusted.get("x-forwarded-proto")).toBe("http");
    expect(untrusted.get("x-forwarded-host")).toBe("h");
    expect(untrusted.get("x-request-id")).toBe("r");
    expect(untrusted.get("x-kept")).toBe("k");
    for (const gone of ["forwarded", "upgrade", "te", "content-length", "connection", "x-hop"])
      expect(untrusted.get(gone)).toBeNull();
  });

  test("event streams are matched by media type", () => {
    expect(isEventStream("text/event-stream")).toBe(true);
    expect(isEventStream("text/event-stream; charset=utf-8")).toBe(true);
    expect(isEventStream("Text/Event-Stream;charset=UTF-8")).toBe(true);
    expect(isEventStream("text/event-streamer")).toBe(false);
    expect(isEventStream(null)).toBe(false);
  });
});

describe("bytes, not strings", () => {
  test("a value read from its bytes reads as its decoded string does", () => {
    const lengths = ["214", "0", "", " 12", "12 ", "007", "1e3", "0x10", "-1", "+1", "1.5"];
    for (const text of [...lengths, "999999999999999", "9999999999999999", "12345678901234567890"]) {
      const bytes = Buffer.from(`x${text}y`, "latin1");
      expect(contentLength(bytes, 1, 1 + text.length)).toBe(Number(text));
    }
    const types = [
      "text/event-stream",
      "Text/Event-Stream; charset=utf-8",
      " text/event-stream",
      "\ttext/event-stream",
    ];
    types.push(
      "\u00a0text/event-stream",
      "\u000btext/event-stream",
      "application/json",
      "t",
      "",
      "text/event-streamer",
    );
    for (const text of types) {
      const bytes = Buffer.from(`x${text}y`, "latin1");
      expect(mayBeEventStream(bytes, 1, 1 + text.length)).toBe(isEventStream(text));
    }
  });

  test("a log line's duration reads as String(n / 100) did", () => {
    const differ: number[] = [];
    const check = (n: number) => hundredths(n) !== String(n / 100) && differ.push(n);
    for (let n = 0; n < 200_000; n++) check(n);
    for (let i = 0; i < 200_000; i++) check(Math.floor(Math.random() * 10 ** (3 + (i % 13))));
    for (const n of [1e15 - 1, 1e15, 1e21, -1, -0, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) check(n);
    expect(differ).toEqual([]);
  });

  test("a head string goes out byte for byte as latin1", () => {
    const got: Buffer[] = [];
    const socket = {
      write: (data: Uint8Array, offset = 0, length = data.byteLength) => {
        got.push(Buffer.from(data.subarray(offset, offset + length)));
        return length;
      },
    };
    const out = new Outbox();
    out.attach(socket as never);
    let all = "";
    for (let c = 0; c < 0x180; c++) all += String.fromCharCode(c);
    batch(() => {
      out.writeText(`x-a: ${all}\r\n`);
      out.write(Buffer.from("body"));
      out.writeText("\u20ac\r\n");
    });
    expect(Buffer.concat(got)).toEqual(
      Buffer.concat([
        Buffer.from(`x-a: ${all}\r\n`, "latin1"),
        Buffer.from("body"),
        Buffer.from("\u20ac\r\n", "latin1"),
      ]),
    );
  });
});

describe("retry policy", () => {
  const enc = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));
  test("a tools/call, alone or in a batch, or an unreadable body, is never retried", () => {
    expect(callsATool(enc({ jsonrpc: "2.0", id: 1, method: "tools/call" }))).toBe(true);
    expect(callsATool(enc([{ method: "tools/list" }, { method: "tools/call" }]))).toBe(true);
    expect(callsATool(enc("{not json"))).toBe(true);
    expect(callsATool(enc({ jsonrpc: "2.0", id: 1, method: "tools/list" }))).toBe(false);
    expect(callsATool(enc([{ method: "initialize" }, { method: "ping" }]))).toBe(false);
  });
});

describe("state file", () => {
  test("round trip, no temp file left, corrupt file is a ConfigError", () => {
    const dir = tempDir("axe-state");
    const file = join(dir, "state", "proxy.json");
    expect(readProxyState(file)).toBeUndefined();
    writeProxyState(file, {
      live: "green",
      colors: { blue: { release: "1", healthy: false }, green: { release: "2", healthy: true } },
    });
    expect(readProxyState(file)).toMatchObject({
      version: 1,
      live: "green",
      colors: { green: { release: "2", healthy: true } },
    });
    expect(readdirSync(join(dir, "state"))).toEqual(["proxy.json"]);
    writeFileSync(file, '{"version":1,"live":"purple"}');
    expect(() => readProxyState(file)).toThrow(ConfigError);
    writeFileSync(file, "{");
    expect(() => readProxyState(file)).toThrow(/not a valid proxy state file/);
    expect(existsSync(file)).toBe(true);
  });
});

/** A request head read by llhttp into a HeadCollector, as ClientConnection reads one (in as many reads as pieces). */
class HeadReader extends HttpParser {
  readonly head: HeadCollector;
  source: Buffer | null = null;
  constructor(read: ReadonlySet<string> | null = null) {
    super(REQUEST);
    this.head = new HeadCollector({ maxHeadBytes: 65_536, maxHeaderCount: 100, maxLineBytes: 8_192 }, read);
  }
  onHeaderField(data: Buffer, at: number, length: number): number {
    return this.head.field(data, at, length) ? 0 : LLHTTP.USER;
  }
  onHeaderValue(data: Buffer, at: number, length: number): number {
    return this.head.fieldValue(data, at, length) ? 0 : LLHTTP.USER;
  }
  onHeadersComplete(): number {
    this.head.end();
    this.source = this.head.source;
    return LLHTTP.PAUSED;
  }
  onBody(): number {
    return 0;
  }
  onMessageComplete(): number {
    return 0;
  }
}

describe("the caller's header lines as bytes", () => {
  const context = (trusted: boolean, host: string) => ({
    peer: "10.0.0.9",
    trusted,
    requestId: "01936f",
    host,
    stamp: "x-axe-forwarded: ab\r\n",
  });
  const heads = [
    "Host: h\r\nAccept: */*\r\nAuthorization: Bearer x.y.z\r\nMcp-Session-Id: s\r\n",
    "Host: h\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nX-Kept: k\r\nTE: trailers\r\n",
    "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nHost: h\r\nForwarded: for=1\r\nX-Real-IP: 1.2.3.4\r\n",
    "Host: h\r\nExpect: 100-continue\r\nX-Axe-Forwarded: forged\r\nX-Request-Id: mine\r\nUpgrade: h2c\r\n",
    "Host: h\r\nX-Latin: caf\xe9\r\nX-Obs: \x80\xff\r\n",
  ];

  test("are the bytes the strings would write, trusted or not, whatever the Host and framing", () => {
    let compared = 0;
    for (const lines of heads)
      for (const trusted of [false, true])
        for (const host of ["h", "other:2"])
          for (const framing of ["", "content-length: 0\r\n"]) {
            const reader = new HeadReader();
            expect(reader.execute(Buffer.from(`GET / HTTP/1.1\r\n${lines}\r\n`, "latin1"))).toBe(LLHTTP.PAUSED);
            const { names, lower, values, lines: spans } = reader.head;
            const map = headerMap(lower, values);
            expect(reader.source).not.toBeNull();
            const bytes = upstreamRequestBytes(
              "GET / HTTP/1.1\r\n",
              reader.source!,
              spans,
              lower,
              map,
              context(trusted, host),
              framing,
              0,
            );
            const text = `GET / HTTP/1.1\r\n${upstreamRequestHead(names, lower, values, map, context(trusted, host))}${framing}\r\n`;
            if (host !== "h")
              expect(bytes).toBeNull(); // a rewritten Host goes the string way
            else {
              expect(bytes!.bytes.toString("latin1", bytes!.start, bytes!.end)).toBe(text);
              compared++;
            }
            reader.free();
          }
    expect(compared).toBe(heads.length * 4);
  });

  test("keep their bytes while later heads are made, across slabs (a retry sends one again later)", () => {
    const made: Array<{ text: string; bytes: ReturnType<typeof upstreamRequestBytes> }> = [];
    for (let i = 0; i < 100; i++) {
      const reader = new HeadReader();
      const lines = `Host: h\r\nAuthorization: Bearer ${String(i).repeat(300 + i)}\r\n`;
      expect(reader.execute(Buffer.from(`GET / HTTP/1.1\r\n${lines}\r\n`, "latin1"))).toBe(LLHTTP.PAUSED);
      const { names, lower, values, lines: spans } = reader.head;
      const map = headerMap(lower, values);
      const bytes = upstreamRequestBytes(
        "GET / HTTP/1.1\r\n",
        reader.source!,
        spans,
        lower,
        map,
        context(false, "h"),
        "",
      );
      made.push({
        text: `GET / HTTP/1.1\r\n${upstreamRequestHead(names, lower, values, map, context(false, "h"))}\r\n`,
        bytes,
      });
      reader.free();
    }
    const slabs = new Set(made.map((m) => m.bytes!.bytes));
    expect(slabs.size).toBeGreaterThan(2);
    for (const { text, bytes } of made) expect(bytes!.bytes.toString("latin1", bytes!.start, bytes!.end)).toBe(text);
  });

  test("are not used when a line reads otherwise than the strings would write it, or the head spans reads", () => {
    for (const lines of [
      "Host:h\r\n",
      "Host:  h\r\n",
      "Host: h \r\n",
      "Host: h\t\r\n",
      "Host: h\r\nX-Empty:\r\n",
      "Host: h\r\nX-Empty: \r\n",
    ]) {
      const reader = new HeadReader();
      expect(reader.execute(Buffer.from(`GET / HTTP/1.1\r\n${lines}\r\n`, "latin1"))).toBe(LLHTTP.PAUSED);
      expect(reader.source).toBeNull();
      reader.free();
    }
    const reader = new HeadReader();
    expect(reader.execute(Buffer.from("GET / HTTP/1.1\r\nHost: h\r\nX-A: o", "latin1"))).toBe(LLHTTP.OK);
    expect(reader.execute(Buffer.from("ne\r\n\r\n", "latin1"))).toBe(LLHTTP.PAUSED);
    expect(reader.source).toBeNull();
    expect(reader.head.values).toEqual(["h", "one"]);
    reader.free();
  });
});

describe("values the proxy does not read", () => {
  const READ = new Set(["host", "x-read"]);
  const head = "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer abc\r\nX-Read: r\r\nAccept: */*\r\n\r\n";

  test("are decoded only when the strings are asked for, and then exactly", () => {
    const reader = new HeadReader(READ);
    expect(reader.execute(Buffer.from(head, "latin1"))).toBe(LLHTTP.PAUSED);
    expect(reader.source).not.toBeNull();
    expect(reader.head.values).toEqual(["h", "", "r", ""]);
    expect(reader.head.decodeAll()).toEqual(["h", "Bearer abc", "r", "*/*"]);
    reader.free();
  });

  test("are decoded as they come once a line cannot go as bytes, or when a read ends inside the head", () => {
    const odd = new HeadReader(READ);
    const oddHead = head.replace("Accept: */*", "Accept:  */*");
    expect(odd.execute(Buffer.from(oddHead, "latin1"))).toBe(LLHTTP.PAUSED);
    expect(odd.source).toBeNull();
    expect(odd.head.values).toEqual(["h", "Bearer abc", "r", "*/*"]);
    odd.free();
    for (let cut = 20; cut < head.length - 2; cut += 3) {
      const split = new HeadReader(READ);
      const first = Buffer.from(head.slice(0, cut), "latin1");
      expect(split.execute(first)).toBe(LLHTTP.OK);
      split.head.detach(); // as ClientConnection does when a read ends inside a head
      first.fill(0); // the read's buffer is gone: nothing may be read from it after detach
      expect(split.execute(Buffer.from(head.slice(cut), "latin1"))).toBe(LLHTTP.PAUSED);
      expect(split.head.values).toEqual(["h", "Bearer abc", "r", "*/*"]);
      split.free();
    }
  });

  test("READ_REQUEST_HEADERS names every request header the proxy reads a value of", () => {
    const root = join(import.meta.dir, "..", "..", "src", "proxy");
    const read = new Set<string>();
    for (const file of ["proxy-handler.ts", "request-guard.ts", "forward-headers.ts", "client-connection.ts"]) {
      const source = readFileSync(join(root, file), "utf8");
      for (const m of source.matchAll(/\b(?:map|headers)(?:\?\.)?(?:\["([a-z-]+)"\]|\.([a-z]+)\b(?!["']))/g))
        read.add(m[1] ?? m[2]!);
    }
    expect(read.size).toBeGreaterThan(8);
    for (const name of read) expect({ name, listed: READ_REQUEST_HEADERS.has(name) }).toEqual({ name, listed: true });
  });
});
