/**
 * The running proxy: health checks on both colors, the saved state, the public listener and
 * the admin socket, wired together. `start()` re-checks both colors before it listens, keeping
 * the saved live color; `stop()` stops accepting, lets in-flight requests finish, and returns.
 *
 * @example
 * const proxy = new ProxyServer(proxySettings(loadConfig({ dir })));
 * await proxy.start();
 * process.on("SIGTERM", () => proxy.stop().then(() => process.exit(0)));
 */

import { dirname, join } from "node:path";
import { urlHost } from "../lib/address.ts";
import { FORWARDED_HEADER, forwardStamp, loadColorKey } from "../lib/color-proof.ts";
import { ProxyError } from "../lib/errors.ts";
import { log as defaultLog, type Logger } from "../lib/log.ts";
import { processMetricsText } from "../lib/process-metrics.ts";
import { AccessLog } from "./access-log.ts";
import { listenAdmin, type ProxyControl } from "./admin-api.ts";
import {
  COLORS,
  type Color,
  type ColorStatus,
  type DrainResult,
  otherColor,
  type PauseResult,
  type ProxyStatus,
  type SwitchResult,
} from "./admin-schema.ts";
import { ClientListener } from "./client-listener.ts";
import { ColorProver } from "./color-prover.ts";
import { ColorSelector } from "./color-selector.ts";
import { HealthCheck, type HealthConsumer, type Probe } from "./health-check.ts";
import type { LatencySeries } from "./latency-history.ts";
import { Metrics } from "./metrics.ts";
import { PauseController } from "./pause-controller.ts";
import { ProxyHandler } from "./proxy-handler.ts";
import { Router } from "./router.ts";
import { clientLimits, type ProxySettings } from "./settings.ts";
import { readProxyState, writeProxyState } from "./state-file.ts";

export interface ProxyServerOptions {
  log?: Logger;
  /** Where access lines go; default stderr. */
  accessWrite?: (chunk: string) => void;
  /** More Prometheus text appended to /metrics (the backup ages). */
  extraMetrics?: () => string;
  /** The operator's status page, served on the admin socket at GET /page; it may ask the proxy itself. */
  statusPage?: (proxy: ProxyServer) => Promise<string>;
}

export class ProxyServer implements ProxyControl, HealthConsumer {
  readonly selector: ColorSelector;
  private readonly health: Record<Color, HealthCheck>;
  private readonly provers: Record<Color, ColorProver>;
  private readonly pauseController: PauseController;
  private readonly metricsRegistry = new Metrics();
  private readonly accessLog: AccessLog;
  private readonly log: Logger;
  private listener: ClientListener | undefined;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private listenPort: number | undefined;
  private admin: Bun.Server<undefined> | undefined;
  private readonly extraMetrics: (() => string) | undefined;
  readonly statusPage: (() => Promise<string>) | undefined;
  private handler: ProxyHandler | undefined;
  private readonly latencyFile: string;
  private metricsServer: Bun.Server<undefined> | undefined;
  private readonly stampLine: string;
  private latencyTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    readonly settings: ProxySettings,
    options: ProxyServerOptions = {},
  ) {
    this.log = options.log ?? defaultLog.child({ service: "axe-proxy" });
    const saved = readProxyState(settings.stateFile);
    this.selector = new ColorSelector(saved?.live ?? "blue", settings.drainTimeoutMs, saved?.pins);
    // pins change with every MCP session: saved at most once a second, and on stop
    this.selector.onChange = () => {
      if (this.saveTimer || !this.listener) return;
      this.saveTimer = setTimeout(() => {
        this.saveTimer = undefined;
        this.saveState();
      }, 1_000);
      this.saveTimer.unref();
    };
    const key = loadColorKey(settings.secretsDir);
    this.stampLine = `${FORWARDED_HEADER}: ${forwardStamp(key)}\r\n`;
    const prover = (c: Color) => new ColorProver(c, new URL(settings.upstreams[c]).host, key, settings.dataDir);
    this.provers = { blue: prover("blue"), green: prover("green") };
    const check = (c: Color) =>
      new HealthCheck(
        c,
        settings.upstreams[c],
        settings.health,
        this,
        saved?.colors[c].healthy ?? false,
        this.provers[c],
      );
    this.health = { blue: check("blue"), green: check("green") };
    if (saved) for (const c of COLORS) this.health[c].release = saved.colors[c].release;
    // the status page's last hour survives a restart: read back here, saved every minute and on stop
    this.latencyFile = join(dirname(settings.stateFile), "proxy-latency.json");
    this.metricsRegistry.history.load(this.latencyFile);
    this.pauseController = new PauseController(settings.pauseTimeoutMs);
    this.accessLog = new AccessLog(settings.accessLog, options.accessWrite);
    this.extraMetrics = options.extraMetrics;
    const page = options.statusPage;
    this.statusPage = page ? () => page(this) : undefined;
  }

  /** The port the public listener is bound to (useful with port 0). */
  get port(): number {
    return this.listenPort ?? this.settings.port;
  }

  async start(): Promise<void> {
    await Promise.all(COLORS.map((c) => this.health[c].start()));
    this.saveState();
    this.admin = await listenAdmin(this.settings.adminSocket, this);
    const settings = this.settings;
    const handler = (this.handler = new ProxyHandler({
      settings,
      router: new Router(settings.routes, settings.frameWebsocket),
      selector: this.selector,
      pause: this.pauseController,
      metrics: this.metricsRegistry,
      accessLog: this.accessLog,
      isHealthy: (color) => this.health[color].healthy,
      provers: this.provers,
      markDown: (color, reason) => this.health[color].markDown(reason),
      stampLine: this.stampLine,
    }));
    const listener = (this.listener = new ClientListener(handler, clientLimits(settings)));
    const host = urlHost(settings.hostname);
    let address = `${host}:${settings.port}`; // the one being bound, named if it fails
    try {
      this.listenPort = listener.listen(settings.hostname, settings.port);
      // after the admin socket: no other proxy runs, so a socket at the path is one a stopped proxy left
      if (settings.tunnelSocket) listener.listenTunnel((address = settings.tunnelSocket));
    } catch (error) {
      this.listener = undefined;
      listener.close();
      await this.stop();
      if (error instanceof ProxyError) throw error;
      const code = (error as { code?: string }).code;
      throw new ProxyError(
        "PROXY_LISTEN_FAILED",
        `cannot listen on ${address}: ${code === "EADDRINUSE" ? "the address is in use" : (error as Error).message}`,
        "is another proxy running? Check with `axe-appliance doctor`, or set proxy.listen in appliance.yaml",
      );
    }
    this.metricsServer = this.serveMetrics();
    this.latencyTimer = setInterval(() => this.saveLatency(), 60_000);
    this.latencyTimer.unref();
    if (settings.ignoredTrustedProxies.length)
      this.log.warn("proxy.trusted_proxies lists loopback addresses, which every local account shares: ignored", {
        ignored: settings.ignoredTrustedProxies,
        hint: "name the tunnel's own address, or none (a tunnel on this machine is then recorded as 127.0.0.1)",
      });
    this.log.info("proxy listening", {
      listen: `${this.settings.hostname}:${this.port}`,
      live: this.selector.live,
      admin_socket: this.settings.adminSocket,
      tunnel_socket: this.settings.tunnelSocket ?? "off",
    });
  }

  /** Stops accepting, waits for in-flight requests and streams (up to the drain timeout), then closes. */
  async stop(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    if (listener) {
      listener.stopAccepting();
      await listener.waitIdle(this.settings.drainTimeoutMs);
      listener.close();
    }
    for (const c of COLORS) this.health[c].stop();
    this.handler?.close();
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (this.admin) this.saveState(); // the pins as they are now
    clearInterval(this.latencyTimer);
    this.latencyTimer = undefined;
    if (this.admin) this.saveLatency();
    this.pauseController.resume();
    await this.admin?.stop(true);
    this.admin = undefined;
    await this.metricsServer?.stop(true);
    this.metricsServer = undefined;
    this.accessLog.flush();
    this.log.info("proxy stopped");
  }

  status(): ProxyStatus {
    const color = (c: Color) => ({
      color: c,
      upstream: this.settings.upstreams[c],
      healthy: this.health[c].healthy,
      release: this.health[c].release,
      inflight: this.selector.inflight[c],
      last_check: this.health[c].lastCheck?.toISOString() ?? null,
      last_error: this.health[c].lastError,
    });
    return {
      service: "axe-proxy",
      live: this.selector.live,
      paused: this.pauseController.paused,
      listen: `${this.settings.hostname}:${this.port}`,
      sessions: this.selector.sessions,
      colors: { blue: color("blue"), green: color("green") },
    };
  }

  switchTo(color: Color): SwitchResult {
    const previous = this.selector.live;
    const check = this.health[color];
    if (color !== previous && !check.healthy)
      throw new ProxyError(
        "PROXY_COLOR_UNHEALTHY",
        `refusing to switch to ${color}: its health check fails (${check.lastError ?? "no good answer yet"})`,
        `check ${this.settings.upstreams[color]}${this.settings.health.path}, then retry`,
      );
    const changed = this.selector.switchTo(color);
    if (changed) {
      this.metricsRegistry.switches++;
      this.metricsRegistry.history.switched(color);
      this.saveState();
      this.saveLatency();
      this.log.info("switched live color", { from: previous, to: color });
    }
    return { live: color, previous, changed };
  }

  async check(color: Color): Promise<ColorStatus> {
    await this.health[color].checkNow();
    return this.status().colors[color];
  }

  async drain(color: Color | undefined, timeoutMs: number | undefined): Promise<DrainResult> {
    const target = color ?? otherColor(this.selector.live);
    if (target === this.selector.live)
      throw new ProxyError(
        "PROXY_DRAIN_LIVE",
        `refusing to drain ${target}: it is the live color`,
        "switch first, then drain the old color",
      );
    const { drained, released } = await this.selector.drain(target, timeoutMs ?? this.settings.drainTimeoutMs);
    const sessions = this.selector.pinnedTo(target);
    this.log.info("drained color", {
      color: target,
      drained,
      inflight: this.selector.inflight[target],
      sessions_released: released,
      sessions_left: sessions,
    });
    return {
      color: target,
      drained,
      inflight: this.selector.inflight[target],
      sessions_released: released,
      sessions,
    };
  }

  pause(): PauseResult {
    this.pauseController.pause();
    this.log.info("paused: new requests are held", { timeout_ms: this.settings.pauseTimeoutMs });
    return { paused: true, held: this.pauseController.held };
  }

  resume(): PauseResult {
    const released = this.pauseController.resume();
    this.log.info("resumed", { released });
    return { paused: false, held: released };
  }

  latency(): LatencySeries {
    return this.metricsRegistry.history.series();
  }

  /** The counters, the backup gauges, and the build and process metrics (prom-client, loaded on the first scrape). */
  async metrics(): Promise<string> {
    const own = await processMetricsText().catch((error: Error) => `# process metrics unavailable: ${error.message}\n`);
    return (
      own +
      this.metricsRegistry.render({
        live: this.selector.live,
        paused: this.pauseController.paused,
        held: this.pauseController.held,
        sessions: this.selector.sessions,
        inflight: this.selector.inflight,
        healthy: { blue: this.health.blue.healthy, green: this.health.green.healthy },
      }) +
      (this.extraMetrics?.() ?? "")
    );
  }

  /**
   * /metrics (and a /healthz naming this install) on loopback TCP for Prometheus, which cannot
   * read a Unix socket. The Host must be a loopback name (a page elsewhere must not read it by DNS
   * rebinding). A port that is taken is logged and skipped: metrics are never worth the proxy.
   */
  private serveMetrics(): Bun.Server<undefined> | undefined {
    const listen = this.settings.metricsListen;
    if (!listen) return undefined;
    const local = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;
    try {
      return Bun.serve({
        hostname: listen.hostname,
        port: listen.port,
        fetch: async (request) => {
          if (!local.test(request.headers.get("host") ?? "")) return new Response("Forbidden: Host\n", { status: 403 });
          const path = new URL(request.url).pathname;
          if (request.method !== "GET") return new Response("GET only\n", { status: 405 });
          if (path === "/metrics")
            return new Response(await this.metrics(), { headers: { "content-type": "text/plain; version=0.0.4" } });
          if (path === "/healthz")
            return Response.json({ status: "ok", service: "axe-proxy-metrics", instance: this.settings.instance });
          return new Response("not found: try /metrics\n", { status: 404 });
        },
      });
    } catch (error) {
      this.log.warn("metrics not served over TCP", {
        listen: `${listen.hostname}:${listen.port}`,
        error: (error as { code?: string }).code ?? (error as Error).message,
        hint: "another program holds the port: set proxy.metrics_listen in appliance.yaml (or off); the admin socket still serves /metrics",
      });
      return undefined;
    }
  }

  /** The port metrics are served on over TCP, if they are (useful with port 0). */
  get metricsPort(): number | undefined {
    return this.metricsServer?.port;
  }

  /** A failed write costs the chart its history after a restart, never a request. */
  private saveLatency(): void {
    try {
      this.metricsRegistry.history.save(this.latencyFile);
    } catch (error) {
      this.log.warn("latency history not saved", { file: this.latencyFile, error: (error as Error).message });
    }
  }

  healthChanged(color: Color, healthy: boolean, probe: Probe): void {
    const level = healthy || color !== this.selector.live ? "info" : "warn";
    this.log[level](`${color} is ${healthy ? "healthy" : "unhealthy"}`, {
      color,
      release: probe.release,
      error: probe.error,
      live: this.selector.live,
    });
    if (this.listener) this.saveState();
  }

  private saveState(): void {
    const color = (c: Color) => ({ release: this.health[c].release, healthy: this.health[c].healthy });
    try {
      writeProxyState(this.settings.stateFile, {
        live: this.selector.live,
        colors: { blue: color("blue"), green: color("green") },
        pins: this.selector.snapshot(),
      });
    } catch (error) {
      this.log.error("cannot write the proxy state file", { file: this.settings.stateFile, error });
    }
  }
}
