/**
 * Headers across the proxy: hop-by-hop ones dropped both ways, Host kept, X-Forwarded-* set
 * by us (believed from the caller only when it is a trusted proxy, the tunnel), X-Request-Id.
 * The request side is written straight into the lines of the upstream request head.
 */
/** Dropped from requests: hop-by-hop, framing (the upstream client writes its own), and ours to set. */
const DROPPED = new Set([
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
  "expect",
  "x-request-id",
]);
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
}

/** The header lines ("name: value\r\n" each) of the upstream request, from the caller's header map. */
export function upstreamRequestHead(incoming: Record<string, string>, context: ForwardContext): string {
  const connection = incoming.connection;
  const named =
    connection === undefined
      ? undefined
      : new Set(
          connection
            .toLowerCase()
            .split(",")
            .map((t) => t.trim()),
        );
  const trusted = context.trusted;
  let head = "";
  for (const name in incoming) {
    if (DROPPED.has(name) || named?.has(name)) continue;
    if (FORWARDED.has(name) && (!trusted || OURS.has(name))) continue;
    head += `${name}: ${incoming[name]}\r\n`;
  }
  const priorFor = trusted ? incoming["x-forwarded-for"] : undefined;
  head += `x-forwarded-for: ${priorFor ? `${priorFor}, ${context.peer}` : context.peer}\r\n`;
  head += `x-forwarded-proto: ${(trusted && incoming["x-forwarded-proto"]) || "http"}\r\n`;
  head += `x-forwarded-host: ${(trusted && incoming["x-forwarded-host"]) || incoming.host || ""}\r\n`;
  head += `x-request-id: ${context.requestId}\r\n`;
  return head;
}

/** True for text/event-stream whatever its parameters (`; charset=utf-8`). */
export function isEventStream(contentType: string | null): boolean {
  return contentType !== null && /^\s*text\/event-stream\s*(;|$)/i.test(contentType);
}
