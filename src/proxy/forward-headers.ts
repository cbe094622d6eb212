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
  const trusted = context.trusted;
  let head = "";
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const lower = lowerNames[i]!;
    if (HOP_BY_HOP.has(lower) || REQUEST_ONLY.has(lower) || named?.has(lower)) continue;
    if (lower === "host") {
      head += `${name}: ${context.host}\r\n`;
      continue;
    }
    if (FORWARDED.has(lower) && (!trusted || OURS.has(lower))) continue;
    head += `${name}: ${values[i]}\r\n`;
  }
  const priorFor = trusted ? map["x-forwarded-for"] : undefined;
  head += `x-forwarded-for: ${priorFor ? `${priorFor}, ${context.peer}` : context.peer}\r\n`;
  head += `x-forwarded-proto: ${(trusted && map["x-forwarded-proto"]) || "http"}\r\n`;
  head += `x-forwarded-host: ${(trusted && map["x-forwarded-host"]) || context.host}\r\n`;
  head += `x-request-id: ${context.requestId}\r\n`;
  return head + context.stamp;
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
