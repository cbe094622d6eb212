/**
 * Refuses requests that must never reach an upstream: unknown methods, ambiguous framing
 * (request smuggling), a missing, doubled or hop-by-hop Host, bodies over the limit, and paths
 * that an upstream could decode into something other than what we routed. llhttp (strict)
 * already refuses CL+TE, doubled lengths, bad chunk sizes and stray CR/LF; the framing checks
 * here hold even if it one day does not.
 */
import { connectionTokens } from "./head-collector.ts";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const DIGITS = /^\d{1,15}$/;
/** For the Allow header of a 405. */
export const PROXIED_METHODS = [...METHODS].join(", ");
/** Encoded slash, backslash, NUL and dot, raw dot segments, backslash and controls: an upstream must see what we routed. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control bytes in a path are what this refuses
const UNSAFE_PATH = /%(2f|5c|00|2e)|\/\.\.?(\/|$)|[\x00-\x20\x7f\\]/i;
const DOT_SEGMENT = /\/\.\.?(\/|$)/;
/** A Host header: a name or an IP literal, an optional port. */
const HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i;

export interface Refusal {
  status: 400 | 405 | 413 | 414 | 431 | 505;
  error: string;
  message: string;
}

export interface GuardLimits {
  maxBodyBytes: number;
}

export interface Target {
  /** The path, dot segments resolved, without query or fragment. */
  path: string;
  /** Path and query: what the upstream is asked for. */
  pathAndQuery: string;
  /** The authority of an absolute-form target (it replaces Host). */
  authority: string | null;
}

/** The request target as routed and forwarded: origin-form, absolute-form rewritten, fragment dropped. */
export function parseTarget(url: string): Target | Refusal {
  let rest = url;
  let authority: string | null = null;
  if (rest.charCodeAt(0) !== 47) {
    const absolute = /^https?:\/\/([^/?#]*)/i.exec(rest);
    if (!absolute || absolute[1] === "" || absolute[1]!.includes("@"))
      return { status: 400, error: "bad_target", message: "the request target must be a path or an http URL" };
    authority = absolute[1]!;
    rest = rest.slice(absolute[0].length) || "/";
    if (rest.charCodeAt(0) !== 47) rest = `/${rest}`;
  }
  const hash = rest.indexOf("#");
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf("?");
  let path = q < 0 ? rest : rest.slice(0, q);
  if (DOT_SEGMENT.test(path)) {
    // resolved as a browser would: /frame/../x is /x, routed and forwarded as such
    path = new URL(path, "http://h").pathname;
    rest = q < 0 ? path : path + rest.slice(q);
  }
  return { path, pathAndQuery: rest, authority };
}

/** `headers` is the lower-case header map; `lower` every header name in lower case, repeats included. */
export function refuse(
  method: string,
  path: string,
  headers: Record<string, string>,
  lower: readonly string[],
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
  const host = hostRefusal(headers, lower);
  if (host) return host;
  if (UNSAFE_PATH.test(path))
    return { status: 400, error: "bad_path", message: "the path holds dot segments or encoded separators" };
  return undefined;
}

/** Exactly one Host, well formed, and not named hop-by-hop: the proxy never invents one. */
function hostRefusal(headers: Record<string, string>, lower: readonly string[]): Refusal | undefined {
  let count = 0;
  for (const name of lower) if (name === "host") count++;
  if (count !== 1)
    return {
      status: 400,
      error: "bad_host",
      message: count === 0 ? "the request has no Host header" : "the request has more than one Host header",
    };
  if (!HOST.test(headers.host!)) return { status: 400, error: "bad_host", message: "the Host header is malformed" };
  if (connectionTokens(headers.connection)?.has("host"))
    return { status: 400, error: "bad_host", message: "Connection names Host as hop-by-hop" };
  return undefined;
}

export function tooLarge(max: number): Refusal {
  return { status: 413, error: "body_too_large", message: `request body exceeds ${max} bytes` };
}
