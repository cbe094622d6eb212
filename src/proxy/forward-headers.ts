/**
 * Headers across the proxy: hop-by-hop ones dropped both ways, Host kept, X-Forwarded-* set
 * by us (believed from the caller only when it is a trusted proxy, the tunnel), X-Request-Id.
 */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"];
const FORWARDED = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip", "forwarded"];

export interface ForwardContext {
  peer: string;
  trusted: boolean;
  requestId: string;
}

/** The request headers the upstream gets. */
export function upstreamRequestHeaders(incoming: Headers, context: ForwardContext): Headers {
  const headers = new Headers(incoming);
  dropHopByHop(headers);
  const host = incoming.get("host") ?? "";
  const priorFor = incoming.get("x-forwarded-for");
  const priorProto = incoming.get("x-forwarded-proto");
  const priorHost = incoming.get("x-forwarded-host");
  if (!context.trusted) for (const name of FORWARDED) headers.delete(name);
  headers.set("x-forwarded-for", context.trusted && priorFor ? `${priorFor}, ${context.peer}` : context.peer);
  headers.set("x-forwarded-proto", context.trusted && priorProto ? priorProto : "http");
  headers.set("x-forwarded-host", context.trusted && priorHost ? priorHost : host);
  headers.set("x-request-id", context.requestId);
  return headers;
}

/** The response headers the caller gets. */
export function downstreamResponseHeaders(upstream: Headers, requestId: string): Headers {
  const headers = new Headers(upstream);
  dropHopByHop(headers);
  headers.set("x-request-id", requestId);
  return headers;
}

function dropHopByHop(headers: Headers): void {
  const connection = headers.get("connection");
  if (connection !== null) for (const token of connection.split(",")) headers.delete(token.trim());
  for (const name of HOP_BY_HOP) headers.delete(name);
}

/** True for text/event-stream whatever its parameters (`; charset=utf-8`). */
export function isEventStream(contentType: string | null): boolean {
  return contentType !== null && /^\s*text\/event-stream\s*(;|$)/i.test(contentType);
}
