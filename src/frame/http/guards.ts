/**
 * DNS-rebinding protection: the Host header must name this server (the public host, a loopback
 * name, or a configured extra), and an Origin header, when a browser sends one, must be the public
 * origin, claude.ai, a loopback origin, or a configured extra. frame's /frame/mcp, its metadata and
 * /metrics, and `status --serve` all pass it. `serve --no-auth` adds a stricter one (noAuthGuard).
 */
import type { Config } from "../../config/load.ts";

const LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]", "::1"];
const CLAUDE_ORIGINS = ["https://claude.ai", "https://claude.com"];

export interface RequestGuard {
  /** A reason to refuse the request, or undefined when it may proceed. */
  check(request: Request): string | undefined;
}

export function requestGuard(config: Config): RequestGuard & { use(config: Config): void } {
  let hosts = new Set<string>();
  let origins = new Set<string>();
  const use = (next: Config) => {
    const publicUrl = new URL(next.mcpUrl);
    hosts = new Set([
      publicUrl.hostname.toLowerCase(),
      ...LOOPBACK_HOSTS,
      ...next.appliance.frame.allowed_hosts.map((h) => h.toLowerCase()),
    ]);
    origins = new Set([
      publicUrl.origin,
      ...CLAUDE_ORIGINS,
      ...next.appliance.frame.allowed_origins.map((o) => o.replace(/\/+$/, "")),
    ]);
  };
  use(config);
  return {
    /** A reloaded appliance.yaml's allowed hosts and origins, from the next request on (a withdrawn one is refused). */
    use,
    check(request) {
      const host = request.headers.get("host");
      if (!host || !hosts.has(hostName(host))) return `host '${host ?? ""}' is not served here`;
      const origin = request.headers.get("origin");
      if (origin && !origins.has(origin) && !isLoopbackOrigin(origin)) return `origin '${origin}' is not allowed`;
      return undefined;
    },
  };
}

/** Headers a proxy stamps on what it forwards (ours sets X-Forwarded-* and X-Request-Id). */
const PROXY_HEADERS = ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-request-id", "via"];

/**
 * `serve --no-auth` makes every caller an admin, so it answers a developer on this machine only:
 * a loopback Host and no header a proxy adds. A no-auth color behind the proxy (which keeps the
 * client's Host) would otherwise give admin to the public URL.
 */
export function noAuthGuard(): RequestGuard {
  return {
    check(request) {
      const host = request.headers.get("host");
      if (!host || !LOOPBACK_HOSTS.includes(hostName(host)))
        return `serve --no-auth answers loopback hosts only, not '${host ?? ""}'`;
      const stamped = PROXY_HEADERS.find((h) => request.headers.has(h));
      if (stamped) return `serve --no-auth does not answer proxied requests (${stamped} is set)`;
      const origin = request.headers.get("origin");
      if (origin && !isLoopbackOrigin(origin)) return `serve --no-auth answers loopback origins only, not '${origin}'`;
      return undefined;
    },
  };
}

/** Only this machine: a loopback Host, and a loopback Origin when one is sent (`status --serve`). */
export function loopbackGuard(): RequestGuard {
  return {
    check(request) {
      const host = request.headers.get("host");
      if (!host || !LOOPBACK_HOSTS.includes(hostName(host))) return `host '${host ?? ""}' is not served here`;
      const origin = request.headers.get("origin");
      if (origin && !isLoopbackOrigin(origin)) return `origin '${origin}' is not allowed`;
      return undefined;
    },
  };
}

/** The name part of a Host header: "a.b:443" -> "a.b", "[::1]:3710" -> "[::1]". */
function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.indexOf(":");
  return colon < 0 ? h : h.slice(0, colon);
}

function isLoopbackOrigin(origin: string): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === "http:" || url.protocol === "https:") && LOOPBACK_HOSTS.includes(url.hostname);
  } catch {
    return false;
  }
}
