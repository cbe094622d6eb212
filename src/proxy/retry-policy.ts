/**
 * Which requests may be sent again after their connection closed before any answer byte (the
 * upstream may have acted on them): GET, HEAD and OPTIONS without a body; PUT and DELETE, which
 * are idempotent; and, on the frame route, MCP JSON-RPC posts that hold no tools/call (a tool may
 * have side effects, so it is never sent twice). A request whose connect failed was never sent
 * and needs none of this. Bodies are kept for a second try up to 1 MiB (exchange.ts).
 */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const IDEMPOTENT = new Set(["PUT", "DELETE"]);

export interface Resendable {
  method: string;
  /** The whole body has arrived. */
  requestEnded: boolean;
  /** The body as received, or null when it was too large to keep. */
  replay: Uint8Array[] | null;
  replayBytes: number;
  /** On the frame route (JSON-RPC). */
  frame: boolean;
  contentType: string | undefined;
}

export function mayResend(request: Resendable): boolean {
  if (!request.requestEnded || request.replay === null) return false;
  if (SAFE_METHODS.has(request.method)) return request.replayBytes === 0;
  if (IDEMPOTENT.has(request.method)) return true;
  if (request.method !== "POST" || !request.frame || !isJson(request.contentType)) return false;
  return !callsATool(Buffer.concat(request.replay));
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

function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && /^\s*application\/json\s*(;|$)/i.test(contentType);
}
