/**
 * The request path: guard, route, wait out a pause, pick a color, forward, stream back, log.
 * Frame requests go to the live color (or the one their MCP session is pinned to); a safe
 * request whose connection fails is sent once more, to the other color when it is healthy.
 */
import type { Server } from "bun";
import type { AccessLog } from "./access-log.ts";
import { type Color, otherColor } from "./admin-schema.ts";
import type { ColorSelector } from "./color-selector.ts";
import { isEventStream, upstreamRequestHead } from "./forward-headers.ts";
import type { Metrics, UpstreamLabel } from "./metrics.ts";
import type { PauseController } from "./pause-controller.ts";
import { PROXIED_METHODS, pathOf, refuse } from "./request-guard.ts";
import { requestId } from "./request-id.ts";
import { type PreparedBody, prepareBody } from "./retry-policy.ts";
import type { Route, Router } from "./router.ts";
import type { ProxySettings } from "./settings.ts";
import { UpstreamFailure, UpstreamPool, type UpstreamResponse } from "./upstream.ts";

export interface ProxyParts {
  settings: ProxySettings;
  router: Router;
  selector: ColorSelector;
  pause: PauseController;
  metrics: Metrics;
  accessLog: AccessLog;
  isHealthy(color: Color): boolean;
}

interface Exchange {
  id: string;
  method: string;
  path: string;
  target: string;
  startedAt: number;
}

/** One upstream to try: its pool, its label in logs and metrics, and the color it counts against. */
interface Attempt {
  pool: UpstreamPool;
  label: UpstreamLabel;
  color: Color | null;
}

export class ProxyHandler {
  private readonly pools = new Map<string, UpstreamPool>();

  constructor(private readonly parts: ProxyParts) {}

  /** Not async: the common path returns the upstream's promise without extra async frames. */
  readonly fetch = (request: Request, server: Server<undefined>): Response | Promise<Response> => {
    const startedAt = performance.now();
    const { path, pathAndQuery } = pathOf(request.url);
    const { settings, router, pause } = this.parts;
    const headerMap = request.headers.toJSON() as Record<string, string>;
    const method = request.method;
    const exchange: Exchange = {
      id: requestId(headerMap["x-request-id"] ?? null),
      method,
      path,
      target: pathAndQuery,
      startedAt,
    };
    if (path === "/healthz" && (method === "GET" || method === "HEAD"))
      return this.answer(exchange, 200, { status: "ok", service: "axe-proxy", live: this.parts.selector.live });
    const refusal = refuse(method, path, headerMap, settings);
    if (refusal)
      return this.answer(
        exchange,
        refusal.status,
        { error: refusal.error, message: refusal.message },
        refusal.status === 405 ? { allow: PROXIED_METHODS } : {},
      );
    const route = router.match(path);
    if (!route) return this.answer(exchange, 404, { error: "no_route", message: `no upstream serves ${path}` });
    if (pause.paused) return this.afterPause(exchange, server, request, headerMap, route);
    return this.dispatch(exchange, server, request, headerMap, route);
  };

  private async afterPause(
    exchange: Exchange,
    server: Server<undefined>,
    request: Request,
    headerMap: Record<string, string>,
    route: Route,
  ): Promise<Response> {
    if (await this.parts.pause.wait()) return this.dispatch(exchange, server, request, headerMap, route);
    this.parts.metrics.pauseTimeouts++;
    return this.answer(
      exchange,
      503,
      { error: "paused", message: `the proxy is paused; held for ${this.parts.settings.pauseTimeoutMs} ms` },
      { "retry-after": "1" },
    );
  }

  private dispatch(
    exchange: Exchange,
    server: Server<undefined>,
    request: Request,
    headerMap: Record<string, string>,
    route: Route,
  ): Response | Promise<Response> {
    const { settings } = this.parts;
    const peer = server.requestIP(request)?.address ?? "unknown";
    const head = upstreamRequestHead(headerMap, {
      peer,
      trusted: settings.trustedProxies.has(peer),
      requestId: exchange.id,
    });
    const prepared = prepareBody(request, route.kind === "frame", headerMap);
    if (prepared instanceof Promise)
      return prepared.then((body) => this.forwardRoute(exchange, server, request, headerMap, route, head, body));
    return this.forwardRoute(exchange, server, request, headerMap, route, head, prepared);
  }

  private forwardRoute(
    exchange: Exchange,
    server: Server<undefined>,
    request: Request,
    headerMap: Record<string, string>,
    route: Route,
    head: string,
    body: PreparedBody,
  ): Promise<Response> {
    if (route.kind === "fixed") {
      const attempt: Attempt = { pool: this.pool(route.upstream), label: "fixed", color: null };
      return this.forward(exchange, server, request, headerMap, head, body, attempt, () => attempt);
    }
    const sessionId = headerMap["mcp-session-id"] ?? null;
    const first = this.colorAttempt(this.parts.selector.pick(sessionId));
    const retry = () => {
      const other = otherColor(first.color!);
      return this.colorAttempt(this.parts.isHealthy(other) ? other : first.color!);
    };
    return this.forward(exchange, server, request, headerMap, head, body, first, retry, sessionId);
  }

  /** Closes idle upstream connections. */
  close(): void {
    for (const pool of this.pools.values()) pool.close();
  }

  private colorAttempt(color: Color): Attempt {
    return { pool: this.pool(this.parts.settings.upstreams[color]), label: color, color };
  }

  private pool(origin: string): UpstreamPool {
    let pool = this.pools.get(origin);
    if (!pool) this.pools.set(origin, (pool = new UpstreamPool(origin)));
    return pool;
  }

  /** A promise chain rather than an async loop: one frame less per request on the hot path. */
  private forward(
    exchange: Exchange,
    server: Server<undefined>,
    request: Request,
    headerMap: Record<string, string>,
    head: string,
    prepared: PreparedBody,
    attempt: Attempt,
    retry: () => Attempt,
    sessionId: string | null = null,
    tries = 0,
  ): Promise<Response> {
    const { selector, metrics, settings } = this.parts;
    const length = prepared.body instanceof ReadableStream ? headerMap["content-length"] : undefined;
    const { color, label } = attempt;
    if (color) selector.started(color);
    const sent = attempt.pool.send({
      method: exchange.method,
      target: exchange.target,
      head,
      body: prepared.body,
      bodyLength: length === undefined ? null : Number(length),
      headerTimeoutMs: settings.headerTimeoutMs,
      onDone: (bytes, _completed, status, streamed) => {
        if (color) selector.finished(color);
        if (streamed) this.log(exchange, label, status, bytes);
      },
    });
    return sent.then(
      (response) => {
        if (color) this.trackSession(exchange, sessionId, color, response);
        return this.respond(exchange, server, request, label, response);
      },
      (error) => {
        if (color) selector.finished(color);
        if (!(error instanceof UpstreamFailure)) throw error;
        metrics.upstreamError(label, error.kind);
        // a refused or reset connection: a safe request goes once more (to the other color when it is up)
        if (!prepared.retryable || tries > 0 || (error.kind !== "connect" && error.kind !== "reset"))
          return this.failed(exchange, label, error);
        metrics.retries++;
        return this.forward(exchange, server, request, headerMap, head, prepared, retry(), retry, sessionId, tries + 1);
      },
    );
  }

  private trackSession(exchange: Exchange, sessionId: string | null, color: Color, response: UpstreamResponse): void {
    const issued = response.head.headers.get("mcp-session-id");
    if (issued !== null) this.parts.selector.pin(issued, color);
    const status = response.head.status;
    if (sessionId !== null && ((exchange.method === "DELETE" && status < 300) || status === 404))
      this.parts.selector.unpin(sessionId);
  }

  private respond(
    exchange: Exchange,
    server: Server<undefined>,
    request: Request,
    label: UpstreamLabel,
    response: UpstreamResponse,
  ): Response {
    const { head } = response;
    head.headers.set("x-request-id", exchange.id);
    if (response.bytes) {
      this.log(exchange, label, head.status, response.bytes.byteLength);
      return new Response(response.bytes.byteLength === 0 ? null : response.bytes, {
        status: head.status,
        statusText: head.statusText,
        headers: head.headers,
      });
    }
    // a long stream (SSE, chunked, a download) must not be cut by the idle timeout
    server.timeout(request, 0);
    if (isEventStream(head.headers.get("content-type"))) head.headers.set("x-accel-buffering", "no");
    return new Response(response.stream, { status: head.status, statusText: head.statusText, headers: head.headers });
  }

  private failed(exchange: Exchange, label: UpstreamLabel, failure: UpstreamFailure): Response {
    if (failure.kind === "timeout")
      return this.answer(exchange, 504, { error: "upstream_timeout", message: failure.message }, {}, label);
    return this.answer(
      exchange,
      502,
      { error: "upstream_unreachable", message: `cannot reach the ${label} upstream: ${failure.message}` },
      {},
      label,
    );
  }

  /** A JSON answer of our own. */
  private answer(
    exchange: Exchange,
    status: number,
    body: Record<string, unknown>,
    extra: Record<string, string> = {},
    label: UpstreamLabel = "proxy",
  ): Response {
    const text = JSON.stringify(status >= 400 ? { ...body, request_id: exchange.id } : body);
    this.log(exchange, label, status, text.length);
    return new Response(text, {
      status,
      headers: { "content-type": "application/json", "x-request-id": exchange.id, ...extra },
    });
  }

  private log(exchange: Exchange, label: UpstreamLabel, status: number, bytes: number): void {
    this.parts.metrics.request(label, status, (performance.now() - exchange.startedAt) / 1000);
    this.parts.accessLog.record(exchange.id, exchange.method, exchange.path, status, label, bytes, exchange.startedAt);
  }
}
