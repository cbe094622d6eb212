/**
 * The proxy's view of the configuration: appliance.yaml's proxy section with defaults filled
 * in (upstreams from frame.bind and frame.ports) and paths made absolute.
 */

import { isAbsolute, join } from "node:path";
import type { Config } from "../config/load.ts";
import { isLoopbackAddress } from "../config/sections.ts";
import { urlHost } from "../lib/address.ts";
import { instanceId } from "../lib/instance.ts";
import type { Color } from "./admin-schema.ts";
import type { ClientLimits } from "./client-connection.ts";

export interface HealthSettings {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
}

export interface ProxySettings {
  hostname: string;
  port: number;
  adminSocket: string;
  /** The tunnel's Unix socket (absolute), or undefined when off. */
  tunnelSocket: string | undefined;
  stateFile: string;
  /** Which install this is (src/lib/instance.ts), said on /healthz. */
  instance: string;
  /** data_dir: current/<color> says which release each color runs, and so whether it must prove itself. */
  dataDir: string;
  /** Where color.key is (src/lib/color-proof.ts). */
  secretsDir: string;
  /** Where /metrics is served over loopback TCP for a scraper; undefined when off. */
  metricsListen: { hostname: string; port: number } | undefined;
  /** Origins (scheme://host:port) of the blue/green pair. */
  upstreams: Record<Color, string>;
  /** Fixed routes: path prefix to upstream origin. */
  routes: Array<{ prefix: string; upstream: string; websocket: boolean }>;
  frameWebsocket: boolean;
  trustedProxies: ReadonlySet<string>;
  /** Loopback entries of proxy.trusted_proxies: every local account's, so never believed (the proxy warns). */
  ignoredTrustedProxies: string[];
  health: HealthSettings;
  drainTimeoutMs: number;
  pauseTimeoutMs: number;
  maxHeaderBytes: number;
  maxHeaderCount: number;
  maxLineBytes: number;
  maxBodyBytes: number;
  clientHeadTimeoutMs: number;
  minBodyBytesPerS: number;
  headerTimeoutMs: number;
  idleTimeoutS: number;
  accessLog: boolean;
}

export function proxySettings(config: Config): ProxySettings {
  const { proxy, frame } = config.appliance;
  const { hostname, port } = splitListen(proxy.listen);
  const bind = urlHost(frame.bind);
  return {
    hostname,
    port,
    adminSocket: underData(config, proxy.admin_socket),
    tunnelSocket: proxy.tunnel_socket === "off" ? undefined : underData(config, proxy.tunnel_socket),
    stateFile: join(config.paths.state, "proxy.json"),
    instance: instanceId(config.paths.data),
    dataDir: config.paths.data,
    secretsDir: config.paths.secrets,
    metricsListen: proxy.metrics_listen === "off" ? undefined : splitListen(proxy.metrics_listen),
    upstreams: {
      blue: origin(proxy.upstreams?.blue ?? `http://${bind}:${frame.ports.blue}`),
      green: origin(proxy.upstreams?.green ?? `http://${bind}:${frame.ports.green}`),
    },
    routes: proxy.routes.map((r) => ({ prefix: r.prefix, upstream: origin(r.upstream), websocket: r.websocket })),
    frameWebsocket: proxy.frame_websocket,
    trustedProxies: new Set(proxy.trusted_proxies.filter((a) => !isLoopbackAddress(a))),
    ignoredTrustedProxies: proxy.trusted_proxies.filter(isLoopbackAddress),
    health: {
      path: proxy.health.path,
      intervalMs: proxy.health.interval_ms,
      timeoutMs: proxy.health.timeout_ms,
      healthyThreshold: proxy.health.healthy_threshold,
      unhealthyThreshold: proxy.health.unhealthy_threshold,
    },
    drainTimeoutMs: proxy.drain_timeout_ms,
    pauseTimeoutMs: proxy.pause_timeout_ms,
    maxHeaderBytes: proxy.max_header_bytes,
    maxHeaderCount: proxy.max_header_count,
    maxLineBytes: proxy.max_line_bytes,
    maxBodyBytes: proxy.max_body_bytes,
    clientHeadTimeoutMs: proxy.client_head_timeout_ms,
    minBodyBytesPerS: proxy.min_body_bytes_per_s,
    headerTimeoutMs: proxy.header_timeout_ms,
    idleTimeoutS: proxy.idle_timeout_s,
    accessLog: proxy.access_log,
  };
}

/** What each caller's connection is held to (head limits, body size, the slow-client deadlines). */
export function clientLimits(settings: ProxySettings): ClientLimits {
  return {
    maxHeadBytes: settings.maxHeaderBytes,
    maxHeaderCount: settings.maxHeaderCount,
    maxLineBytes: settings.maxLineBytes,
    maxBodyBytes: settings.maxBodyBytes,
    headTimeoutMs: settings.clientHeadTimeoutMs,
    minBodyBytesPerS: settings.minBodyBytesPerS,
    idleTimeoutMs: settings.idleTimeoutS * 1000,
  };
}

/** "127.0.0.1:3712" or "[::1]:3712" to a listener's hostname and port. */
export function splitListen(listen: string): { hostname: string; port: number } {
  const at = listen.lastIndexOf(":");
  return { hostname: listen.slice(0, at).replace(/^\[(.*)\]$/, "$1"), port: Number(listen.slice(at + 1)) };
}

function underData(config: Config, path: string): string {
  return isAbsolute(path) ? path : join(config.paths.data, path);
}

function origin(url: string): string {
  return new URL(url).origin;
}
