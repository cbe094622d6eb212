/**
 * Headers across the proxy: hop-by-hop ones dropped both ways, Host kept, X-Forwarded-* set
 * by us (believed from the caller only when it is a trusted proxy, the tunnel), X-Request-Id.
 * The request side is written straight into the lines of the upstream request head.
 */
/** Dropped from requests: hop-by-hop, framing (the upstream client writes its own), and ours to set. */
const DROPPED = new Set([
  "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
  "content-length", "expect", "x-request-id",
]);
const FORWARDED = new Set(["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip", "forwarded"]);

export interface ForwardContext {
  peer: string;
  trusted: boolean;
  requestId: string;
}

/** The header lines ("name: value\r\n" each) of the upstream request. */
export function upstreamRequestHead(incoming: Headers, context: ForwardContext): string {
  const connection = incoming.get("connection");
  const named = connection === null ? undefined : new Set(connection.toLowerCase().split(",").map((t) => t.trim()));
  let head = "";
  let host = "";
  let priorFor: string | null = null;
  let priorProto: string | null = null;
  let priorHost: string | null = null;
  for (const [name, value] of incoming) {
    if (DROPPED.has(name) || named?.has(name)) continue;
    if (FORWARDED.has(name)) {
      if (name === "x-forwarded-for") priorFor = value;
      else if (name === "x-forwarded-proto") priorProto = value;
      else if (name === "x-forwarded-host") priorHost = value;
      if (!context.trusted || name === "x-forwarded-for" || name === "x-forwarded-proto" || name === "x-forwarded-host") continue;
    }
    if (name === "host") host = value;
    head += `${name}: ${value}\r\n`;
  }
  const trusted = context.trusted;
  head += `x-forwarded-for: ${trusted && priorFor ? `${priorFor}, ${context.peer}` : context.peer}\r\n`;
  head += `x-forwarded-proto: ${trusted && priorProto ? priorProto : "http"}\r\n`;
  head += `x-forwarded-host: ${trusted && priorHost ? priorHost : host}\r\n`;
  head += `x-request-id: ${context.requestId}\r\n`;
  return head;
}

/** True for text/event-stream whatever its parameters (`; charset=utf-8`). */
export function isEventStream(contentType: string | null): boolean {
  return contentType !== null && /^\s*text\/event-stream\s*(;|$)/i.test(contentType);
}
