/** Reading upstream responses: heads, framing, chunked bodies split anywhere. */
import { describe, expect, test } from "bun:test";
import { ChunkedDecoder, ProtocolError, parseResponseHead } from "../../src/proxy/http1-response.ts";

describe("parseResponseHead", () => {
  test("status, headers without hop-by-hop ones, and framing", () => {
    const head = parseResponseHead(
      "HTTP/1.1 201 Created\r\nContent-Length: 12\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: yes",
      "POST",
    );
    expect(head).toMatchObject({ status: 201, statusText: "Created", framing: "length", length: 12, keepAlive: true });
    expect([...head.headers.keys()].sort()).toEqual(["content-length", "x-kept"]);
  });

  test("chunked, close-delimited, bodiless, and HTTP/1.0", () => {
    expect(parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", "GET")).toMatchObject({
      framing: "chunked",
      keepAlive: true,
    });
    expect(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Type: text/plain", "GET")).toMatchObject({
      framing: "close",
      keepAlive: false,
    });
    expect(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 10", "HEAD")).toMatchObject({
      framing: "none",
      keepAlive: true,
    });
    expect(parseResponseHead("HTTP/1.1 304 Not Modified", "GET")).toMatchObject({ framing: "none" });
    expect(parseResponseHead("HTTP/1.0 200 OK\r\nContent-Length: 1", "GET")).toMatchObject({ keepAlive: false });
    expect(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close", "GET")).toMatchObject({
      keepAlive: false,
    });
  });

  test("ambiguous framing and garbage are errors", () => {
    expect(() =>
      parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked", "GET"),
    ).toThrow(ProtocolError);
    expect(() => parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2", "GET")).toThrow(
      ProtocolError,
    );
    expect(() => parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: -1", "GET")).toThrow(ProtocolError);
    expect(() => parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip", "GET")).toThrow(ProtocolError);
    expect(() => parseResponseHead("SSH-2.0-OpenSSH", "GET")).toThrow(ProtocolError);
    expect(() => parseResponseHead("HTTP/1.1 200 OK\r\nno colon here", "GET")).toThrow(ProtocolError);
  });
});

describe("ChunkedDecoder", () => {
  const body = "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";

  test("decodes in one piece and reports where the body ends", () => {
    const bytes = new TextEncoder().encode(`${body}EXTRA`);
    let out = "";
    const end = new ChunkedDecoder().feed(bytes, 0, (p) => (out += new TextDecoder().decode(p)));
    expect(out).toBe("hello, world");
    expect(end).toBe(body.length);
  });

  test("decodes when split at every byte", () => {
    const decoder = new ChunkedDecoder();
    const bytes = new TextEncoder().encode(body);
    let out = "";
    let end = -1;
    for (let i = 0; i < bytes.length; i++)
      end = decoder.feed(bytes.subarray(i, i + 1), 0, (p) => (out += new TextDecoder().decode(p)));
    expect(out).toBe("hello, world");
    expect(end).toBe(1);
  });

  test("a bad size or a missing CRLF after data is an error", () => {
    expect(() => new ChunkedDecoder().feed(new TextEncoder().encode("zz\r\n"), 0, () => undefined)).toThrow(
      ProtocolError,
    );
    expect(() => new ChunkedDecoder().feed(new TextEncoder().encode("2\r\nabXY\r\n"), 0, () => undefined)).toThrow(
      ProtocolError,
    );
  });
});
