/**
 * Reading an upstream's HTTP/1.1 response: the head (status line and headers, hop-by-hop
 * headers dropped) and the framing of its body, plus a decoder for chunked bodies. Anything
 * ambiguous (two lengths, a length with chunked, a bad size) is an error, never a guess.
 */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

export type Framing = "none" | "length" | "chunked" | "close";

export interface ResponseHead {
  status: number;
  statusText: string;
  headers: Headers;
  framing: Framing;
  /** Body bytes when framing is "length". */
  length: number;
  /** The connection may carry another request after this response. */
  keepAlive: boolean;
}

export class ProtocolError extends Error {}

/** Parses the head (without its final blank line) of a response to a `method` request. */
export function parseResponseHead(text: string, method: string): ResponseHead {
  // one pass with indexOf over the lines: no split array, and a regex only where a value is checked
  let lineEnd = text.indexOf("\r\n");
  if (lineEnd < 0) lineEnd = text.length;
  const { status, statusText, http10 } = parseStatusLine(text.slice(0, lineEnd));
  const headers = new Headers();
  let length: string | undefined;
  let chunked = false;
  let close = http10;
  let connectionTokens: string[] | undefined;
  for (let at = lineEnd + 2; at < text.length + 2; at = lineEnd + 2) {
    lineEnd = text.indexOf("\r\n", at);
    if (lineEnd < 0) lineEnd = text.length;
    const colon = text.indexOf(":", at);
    if (colon <= at || colon >= lineEnd) throw new ProtocolError("bad header line from upstream");
    const name = text.slice(at, colon).trim().toLowerCase();
    const value = text.slice(colon + 1, lineEnd).trim();
    if (name === "content-length") {
      if (!/^\d{1,15}$/.test(value) || (length !== undefined && length !== value))
        throw new ProtocolError("bad Content-Length from upstream");
      length = value;
    } else if (name === "transfer-encoding") {
      if (value.toLowerCase() !== "chunked")
        throw new ProtocolError(`unsupported Transfer-Encoding from upstream: ${value}`);
      chunked = true;
    } else if (name === "connection") {
      for (const token of value.toLowerCase().split(",")) {
        const t = token.trim();
        if (t === "close") close = true;
        else if (t === "keep-alive" && http10) close = false;
        (connectionTokens ??= []).push(t);
      }
    }
    if (!HOP_BY_HOP.has(name)) headers.append(name, value);
  }
  if (connectionTokens) for (const token of connectionTokens) headers.delete(token);
  if (chunked && length !== undefined)
    throw new ProtocolError("upstream sent both Content-Length and Transfer-Encoding");
  const bodiless = method === "HEAD" || status === 204 || status === 304 || status < 200;
  const framing: Framing = bodiless ? "none" : chunked ? "chunked" : length !== undefined ? "length" : "close";
  if (framing === "close") close = true;
  return { status, statusText, headers, framing, length: framing === "length" ? Number(length) : 0, keepAlive: !close };
}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/;

/** "HTTP/1.x NNN text": the common "HTTP/1.1 200 OK" is checked by hand, anything else by the full pattern. */
function parseStatusLine(line: string): { status: number; statusText: string; http10: boolean } {
  if (line === "HTTP/1.1 200 OK") return { status: 200, statusText: "OK", http10: false };
  const match = STATUS_LINE.exec(line);
  if (!match) throw new ProtocolError(`bad status line from upstream: ${JSON.stringify(line.slice(0, 40))}`);
  return { status: Number(match[2]), statusText: match[3] ?? "", http10: match[1] === "0" };
}

/** Decodes a chunked body as bytes arrive; trailers are read and dropped. */
export class ChunkedDecoder {
  private state: "size" | "data" | "data-end" | "trailer" | "done" = "size";
  private line = "";
  private remaining = 0;

  /**
   * Feeds bytes from `start`; body pieces go to `onChunk` (as views into `data`). Returns the
   * index just past the body's end once it is complete, or -1 when more bytes are needed.
   */
  feed(data: Uint8Array, start: number, onChunk: (piece: Uint8Array) => void): number {
    let i = start;
    while (i < data.length) {
      if (this.state === "data") {
        const take = Math.min(this.remaining, data.length - i);
        onChunk(data.subarray(i, i + take));
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = "data-end";
        continue;
      }
      const byte = data[i++]!;
      if (byte !== 10) {
        if (byte !== 13) this.line += String.fromCharCode(byte);
        if (this.line.length > 1024) throw new ProtocolError("chunk line too long from upstream");
        continue;
      }
      const line = this.line;
      this.line = "";
      if (this.state === "size") {
        const size = /^([0-9a-fA-F]{1,8})(;.*)?$/.exec(line.trim());
        if (!size) throw new ProtocolError("bad chunk size from upstream");
        this.remaining = parseInt(size[1]!, 16);
        this.state = this.remaining === 0 ? "trailer" : "data";
      } else if (this.state === "data-end") {
        if (line !== "") throw new ProtocolError("chunk not followed by CRLF from upstream");
        this.state = "size";
      } else if (this.state === "trailer" && line === "") {
        this.state = "done";
        return i;
      }
    }
    return -1;
  }
}
