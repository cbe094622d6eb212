/**
 * Headers across the proxy, written as the lines of the head that goes on: the caller's (or the
 * upstream's) header lines byte for byte, minus hop-by-hop ones (the fixed list and every header
 * the Connection header names), minus framing (we write our own), plus ours: X-Forwarded-* set by
 * us (believed from the caller only when it is a trusted proxy, the tunnel) and X-Request-Id.
 */
import { FORWARDED_HEADER } from "../lib/color-proof.ts";
import { connectionTokens } from "./head-collector.ts";

/** Hop-by-hop, or framing that the proxy writes itself, in both directions (and the upstream's own request id). */
export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-length",
  "x-request-id",
]);
/**
 * The request headers whose values the proxy reads (request-guard.ts, proxy-handler.ts and the
 * X-Forwarded-* here); the others' values are decoded only when the head goes on as strings
 * (HeadCollector's `read`). test/proxy/units.test.ts holds the sources to this list.
 */
export const READ_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "content-type",
  "expect",
  "upgrade",
  "mcp-session-id",
  "x-request-id",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
]);
/** Dropped from requests besides: `Expect` is answered by the proxy itself; only the proxy stamps what it forwards. */
const REQUEST_ONLY = new Set(["expect", FORWARDED_HEADER]);
const FORWARDED = new Set([
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-real-ip",
  "forwarded",
]);
/** Rewritten by us even when the caller is trusted. */
const OURS = new Set(["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]);

export interface ForwardContext {
  peer: string;
  trusted: boolean;
  requestId: string;
  /** The Host the upstream gets (the caller's, or the authority of an absolute-form target). */
  host: string;
  /** The proxy's stamp line for a color (forwardStamp), "" for a fixed route: it is not for other programs. */
  stamp: string;
}

const DROP = 0;
const KEEP = 1;
const HOST = 2;

/** What becomes of a request header line: dropped, passed on, or (Host) written with the Host the upstream gets. */
function requestLineFate(lower: string, trusted: boolean, named: Set<string> | undefined): number {
  if (HOP_BY_HOP.has(lower) || REQUEST_ONLY.has(lower) || named?.has(lower)) return DROP;
  if (lower === "host") return HOST;
  if (FORWARDED.has(lower) && (!trusted || OURS.has(lower))) return DROP;
  return KEEP;
}

/** The lines the proxy adds after the caller's: X-Forwarded-*, X-Request-Id and the stamp. */
function ourLines(map: Record<string, string>, context: ForwardContext): string {
  const trusted = context.trusted;
  const priorFor = trusted ? map["x-forwarded-for"] : undefined;
  return (
    `x-forwarded-for: ${priorFor ? `${priorFor}, ${context.peer}` : context.peer}\r\n` +
    `x-forwarded-proto: ${(trusted && map["x-forwarded-proto"]) || "http"}\r\n` +
    `x-forwarded-host: ${(trusted && map["x-forwarded-host"]) || context.host}\r\n` +
    `x-request-id: ${context.requestId}\r\n${context.stamp}`
  );
}

/**
 * The header lines ("name: value\r\n" each) of the upstream request. `map` is the lower-case view
 * of the same headers (headerMap), used for the few that are read.
 */
export function upstreamRequestHead(
  names: readonly string[],
  lowerNames: readonly string[],
  values: readonly string[],
  map: Record<string, string>,
  context: ForwardContext,
): string {
  const named = connectionTokens(map.connection);
  let head = "";
  for (let i = 0; i < names.length; i++) {
    const fate = requestLineFate(lowerNames[i]!, context.trusted, named);
    if (fate === DROP) continue;
    head += `${names[i]}: ${fate === HOST ? context.host : values[i]}\r\n`;
  }
  return head + ourLines(map, context);
}

type LatinBuffer = Buffer & { latin1Write(text: string, at: number): number };

/** Bytes `start` to `end` of `bytes` (a range of a shared slab: a view of its own cost more than the copy). */
export interface HeadBytes {
  bytes: Buffer;
  start: number;
  end: number;
}
/**
 * Below this many bytes of the caller's kept lines (wrk's lone Host line), the strings cost less
 * than the extra copies: measured with bench/proxy-work.ts (docs/performance.md).
 */
const WORTH_COPYING = 256;

/**
 * Request heads are copied into shared slabs, as Node pools small Buffers: an allocation each
 * cost more than the copy. A slab lives while an exchange still holds a head in it (until the
 * answer's head came: Exchange lets go of it then).
 */
const SLAB_BYTES = 32_768;
let SLAB = Buffer.allocUnsafe(SLAB_BYTES) as LatinBuffer;
let slabAt = 0;

/**
 * The whole upstream request head (request line, header lines, framing, blank line) as one copy
 * of its bytes: the caller's kept header lines as they came (`lines`: [start, end) of each line in
 * `source`, read by HeadCollector only when each reads exactly as `upstreamRequestHead` would write
 * it), so the same bytes as `${requestLine}${upstreamRequestHead(...)}${framing}\r\n` without
 * decoding or re-encoding them. Null when the Host line would be rewritten (an absolute-form
 * target naming another authority), or when the kept lines are fewer than `minBytes`: then the
 * caller writes the strings.
 */
export function upstreamRequestBytes(
  requestLine: string,
  source: Buffer,
  lines: readonly number[],
  lowerNames: readonly string[],
  map: Record<string, string>,
  context: ForwardContext,
  framing: string,
  minBytes = WORTH_COPYING,
): HeadBytes | null {
  // the lines span less than `minBytes` (wrk's lone Host): the strings cost less, and nothing is done twice
  if (lines.length === 0 || lines[lines.length - 1]! - lines[0]! < minBytes) return null;
  const named = connectionTokens(map.connection);
  const runs: number[] = [];
  let runStart = -1;
  let runEnd = -1;
  let kept = 0;
  for (let i = 0; i < lowerNames.length; i++) {
    const fate = requestLineFate(lowerNames[i]!, context.trusted, named);
    if (fate === HOST && context.host !== map.host) return null;
    if (fate === DROP) continue;
    const start = lines[i * 2]!;
    const end = lines[i * 2 + 1]!;
    kept += end - start;
    if (start === runEnd) runEnd = end;
    else {
      if (runStart !== -1) runs.push(runStart, runEnd);
      runStart = start;
      runEnd = end;
    }
  }
  if (runStart !== -1) runs.push(runStart, runEnd);
  if (kept < minBytes) return null;
  const tail = `${ourLines(map, context)}${framing}\r\n`;
  const length = requestLine.length + kept + tail.length;
  let slab = SLAB;
  let at = 0;
  if (length > SLAB_BYTES / 8) slab = Buffer.allocUnsafe(length) as LatinBuffer;
  else {
    if (slabAt + length > SLAB_BYTES) {
      SLAB = slab = Buffer.allocUnsafe(SLAB_BYTES) as LatinBuffer;
      slabAt = 0;
    }
    at = slabAt;
    slabAt += length;
  }
  const start = at;
  at += slab.latin1Write(requestLine, at);
  for (let r = 0; r < runs.length; r += 2) at += source.copy(slab, at, runs[r], runs[r + 1]);
  slab.latin1Write(tail, at);
  return { bytes: slab, start, end: start + length };
}

/** What the proxy reads of an upstream's answer head, in one pass over its headers. */
export interface ResponseHeaders {
  /** The header lines for the caller: hop-by-hop, framing and the upstream's own X-Request-Id dropped. */
  lines: string;
  /**
   * The same lines as ranges [start, end, start, end, ...] of the upstream's read `rawSource`
   * (response-head.ts), valid until that read's batch ends; null: use `lines`.
   */
  raw: number[] | null;
  rawSource: Buffer | null;
  /** Content-Length, when the upstream framed the body so. */
  length: number | null;
  /** An Mcp-Session-Id the upstream issued. */
  sessionId: string | null;
  eventStream: boolean;
  /** The Upgrade header (for a 101). */
  upgrade: string | null;
}

export function readResponseHeaders(
  names: readonly string[],
  lower: readonly string[],
  values: readonly string[],
): ResponseHeaders {
  let named: Set<string> | undefined;
  for (let i = 0; i < lower.length; i++)
    if (lower[i] === "connection") for (const token of connectionTokens(values[i])!) (named ??= new Set()).add(token);
  const read: ResponseHeaders = {
    lines: "",
    raw: null,
    rawSource: null,
    length: null,
    sessionId: null,
    eventStream: false,
    upgrade: null,
  };
  for (let i = 0; i < lower.length; i++) {
    const name = lower[i]!;
    if (name === "content-length") read.length = Number(values[i]);
    else if (name === "upgrade") read.upgrade = values[i]!;
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    if (name === "mcp-session-id") read.sessionId = values[i]!;
    else if (name === "content-type") read.eventStream = isEventStream(values[i]);
    read.lines += `${names[i]}: ${values[i]}\r\n`;
  }
  return read;
}

/** True for text/event-stream whatever its parameters (`; charset=utf-8`). */
export function isEventStream(contentType: string | undefined | null): boolean {
  return contentType != null && /^\s*text\/event-stream\s*(;|$)/i.test(contentType);
}
