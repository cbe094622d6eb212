/**
 * Headers across the proxy, written as the lines of the head that goes on: the caller's (or the
 * upstream's) header lines byte for byte, minus hop-by-hop ones (the fixed list and every header
 * the Connection header names), minus framing (we write our own), plus ours: X-Forwarded-* set by
 * us (believed from the caller only when it is a trusted proxy, the tunnel) and X-Request-Id.
 */
import { connectionTokens } from "./head-collector.ts";

/** Hop-by-hop, or framing that the proxy writes itself, in both directions. */
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
  "content-length",
  "x-request-id",
]);
/** Dropped from requests besides: `Expect` is answered by the proxy itself. */
const REQUEST_ONLY = new Set(["expect"]);
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
}

/**
 * The header lines ("name: value\r\n" each) of the upstream request. `map` is the lower-case view
 * of the same headers (headerMap), used for the few that are read.
 */
export function upstreamRequestHead(
  names: readonly string[],
  values: readonly string[],
  map: Record<string, string>,
  context: ForwardContext,
): string {
  const named = connectionTokens(map.connection);
  const trusted = context.trusted;
  let head = "";
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const lower = name.toLowerCase();
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
  return head;
}

/** The upstream's header lines for the caller: hop-by-hop, framing and its own X-Request-Id dropped. */
export function clientResponseHeaders(names: readonly string[], values: readonly string[]): string {
  let connection: Set<string> | undefined;
  for (let i = 0; i < names.length; i++)
    if (names[i]!.length === 10 && names[i]!.toLowerCase() === "connection")
      connection = new Set([...(connection ?? []), ...connectionTokens(values[i])!]);
  let head = "";
  for (let i = 0; i < names.length; i++) {
    const lower = names[i]!.toLowerCase();
    if (HOP_BY_HOP.has(lower) || connection?.has(lower)) continue;
    head += `${names[i]}: ${values[i]}\r\n`;
  }
  return head;
}

/** True for text/event-stream whatever its parameters (`; charset=utf-8`). */
export function isEventStream(contentType: string | undefined | null): boolean {
  return contentType != null && /^\s*text\/event-stream\s*(;|$)/i.test(contentType);
}
