/**
 * Which requests may be sent again after a connection failure: GET, HEAD and OPTIONS without a
 * body, and, on the frame route, MCP JSON-RPC posts that hold no tools/call (a tool may have
 * side effects, so it is never sent twice). Those posts are read into memory (they are small)
 * so that they can be sent again; every other body streams through untouched.
 */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** Larger JSON-RPC posts stream and are not retried. */
const MAX_BUFFERED = 1_048_576;

export interface PreparedBody {
  body: ReadableStream<Uint8Array> | Uint8Array | null;
  retryable: boolean;
}

/** Synchronous unless the body must be read (a JSON-RPC post): most requests skip a promise. */
/** `headerMap` is the request's `Headers.toJSON()`, read once by the caller, so no header is read twice. */
export function prepareBody(
  request: Request,
  jsonRpc: boolean,
  headerMap: Record<string, string> = request.headers.toJSON(),
): PreparedBody | Promise<PreparedBody> {
  const length = headerMap["content-length"] ?? null;
  const chunked = headerMap["transfer-encoding"] !== undefined;
  if (!chunked && (length === null || length === "0")) {
    return { body: length === "0" ? new Uint8Array(0) : null, retryable: SAFE_METHODS.has(request.method) };
  }
  if (
    !jsonRpc ||
    request.method !== "POST" ||
    chunked ||
    Number(length) > MAX_BUFFERED ||
    !isJson(headerMap["content-type"] ?? null)
  )
    return { body: request.body, retryable: false };
  return request.bytes().then((bytes) => ({ body: bytes, retryable: !callsATool(bytes) }));
}

/** True when the JSON-RPC message (or batch) holds a tools/call, or cannot be read: then we assume it does. */
export function callsATool(bytes: Uint8Array): boolean {
  let message: unknown;
  try {
    message = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return true;
  }
  const messages = Array.isArray(message) ? message : [message];
  return messages.some(
    (m) => typeof m !== "object" || m === null || (m as { method?: unknown }).method === "tools/call",
  );
}

function isJson(contentType: string | null): boolean {
  return contentType !== null && /^\s*application\/json\s*(;|$)/i.test(contentType);
}
