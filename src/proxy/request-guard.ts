/**
 * Refuses requests that must never reach an upstream: unknown methods, ambiguous framing
 * (request smuggling), bodies and headers over the limits, and paths that an upstream could
 * decode into something other than what we routed. Bun's parser already refuses the worst
 * (Content-Length with Transfer-Encoding, duplicate lengths, oversized headers); these checks
 * hold even if it one day does not.
 */
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const DIGITS = /^\d{1,15}$/;
/** For the Allow header of a 405. */
export const PROXIED_METHODS = [...METHODS].join(", ");
/** Encoded slash, backslash, NUL and dot, and raw dot segments: an upstream must see what we routed. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control bytes in a path are what this refuses
const UNSAFE_PATH = /%(2f|5c|00|2e)|\/\.\.?(\/|$)|[\x00-\x20\x7f\\]/i;

export interface Refusal {
  status: 400 | 405 | 413 | 431;
  error: string;
  message: string;
}

export interface GuardLimits {
  maxHeaderBytes: number;
  maxBodyBytes: number;
}

/** The path (no query) of a request URL as Bun hands it over: absolute, or origin-form for HTTP/1.0. */
export function pathOf(url: string): { path: string; pathAndQuery: string } {
  const start = url.charCodeAt(0) === 47 ? 0 : url.indexOf("/", url.indexOf("//") + 2);
  const pathAndQuery = start < 0 ? "/" : url.slice(start);
  const q = pathAndQuery.indexOf("?");
  return { path: q < 0 ? pathAndQuery : pathAndQuery.slice(0, q), pathAndQuery };
}

/** `headers` is the request's header map (Bun's `Headers.toJSON()`: lower-case names, one value each). */
export function refuse(
  method: string,
  path: string,
  headers: Record<string, string>,
  limits: GuardLimits,
): Refusal | undefined {
  if (!METHODS.has(method))
    return { status: 405, error: "method_not_allowed", message: `method ${method} is not proxied` };
  const te = headers["transfer-encoding"];
  const length = headers["content-length"];
  if (te !== undefined && (length !== undefined || te.toLowerCase() !== "chunked"))
    return {
      status: 400,
      error: "bad_framing",
      message: "Transfer-Encoding must be chunked alone, without Content-Length",
    };
  if (length !== undefined) {
    if (!DIGITS.test(length))
      return { status: 400, error: "bad_framing", message: "Content-Length must be one number" };
    if (Number(length) > limits.maxBodyBytes) return tooLarge(limits.maxBodyBytes);
  }
  if (UNSAFE_PATH.test(path))
    return { status: 400, error: "bad_path", message: "the path holds dot segments or encoded separators" };
  let size = method.length + path.length + 12;
  for (const name in headers) size += name.length + String(headers[name]).length + 4;
  if (size > limits.maxHeaderBytes)
    return {
      status: 431,
      error: "headers_too_large",
      message: `request headers exceed ${limits.maxHeaderBytes} bytes`,
    };
  return undefined;
}

export function tooLarge(max: number): Refusal {
  return { status: 413, error: "body_too_large", message: `request body exceeds ${max} bytes` };
}
