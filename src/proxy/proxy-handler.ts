/**
 * The request path: guard, route, wait out a pause, pick a color, forward, stream back, log.
 * Frame requests go to the live color (or the one their MCP session is pinned to); a safe
 * request whose connection fails is sent once more, to the other color when it is healthy.
 */
import type { Server } from "bun";
import { otherColor, type Color } from "./admin-schema.ts";
import type { AccessLog } from "./access-log.ts";
import type { ColorSelector } from "./color-selector.ts";
import { downstreamResponseHeaders, isEventStream, upstreamRequestHeaders } from "./forward-headers.ts";
import type { Metrics, UpstreamLabel } from "./metrics.ts";
import type { PauseController } from "./pause-controller.ts";
import { pathOf, refuse } from "./request-guard.ts";
import { requestId } from "./request-id.ts";
import { prepareBody } from "./retry-policy.ts";
import type { Router } from "./router.ts";
import type { ProxySettings } from "./settings.ts";
import { sendUpstream, trackBody, UpstreamFailure } from "./upstream.ts";

/** Bodies up to this size with a known length are read whole: cheaper than a tracked stream. */
const SMALL_BODY = 65_536;

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
  startedAt: number;
}

export class ProxyHandler {
  constructor(private readonly parts: ProxyParts) {}

  readonly fetch = async (request: Request, server: Server<undefined>): Promise<Response> => {
    const startedAt = performance.now();
    const { path, pathAndQuery } = pathOf(request.url);
    const { settings, router, pause } = this.parts;
    const exchange: Exchange = { id: requestId(request.headers.get("x-request-id")), method: request.method, path, startedAt };
    if (path === "/healthz" && (request.method === "GET" || request.method === "HEAD"))
      return this.answer(exchange, 200, { status: "ok", service: "axe-proxy", live: this.parts.selector.live });
    const refusal = refuse(request, path, settings);
    if (refusal) return this.answer(exchange, refusal.status, { error: refusal.error, message: refusal.message });
    const route = router.match(path);
    if (!route) return this.answer(exchange, 404, { error: "no_route", message: `no upstream serves ${path}` });
    if (pause.paused && !(await pause.wait())) {
      this.parts.metrics.pauseTimeouts++;
      return this.answer(exchange, 503, { error: "paused", message: `the proxy is paused; held for ${settings.pauseTimeoutMs} ms` }, { "retry-after": "1" });
    }
    const peer = server.requestIP(request)?.address ?? "unknown";
    const headers = upstreamRequestHeaders(request.headers, { peer, trusted: settings.trustedProxies.has(peer), requestId: exchange.id });
    const prepared = await prepareBody(request, route.kind === "frame");
    if (route.kind === "fixed") {
      return this.forward(exchange, server, request, "fixed", route.upstream + pathAndQuery, headers, prepared.body, prepared.retryable ? route.upstream + pathAndQuery : undefined);
    }
    return this.forwardToColor(exchange, server, request, pathAndQuery, headers, prepared.body, prepared.retryable);
  };

  private async forwardToColor(
    exchange: Exchange,
    server: Server<undefined>,
    request: Request,
    pathAndQuery: string,
    headers: Headers,
    body: ReadableStream<Uint8Array> | Uint8Array | null,
    retryable: boolean,
  ): Promise<Response> {
    const { selector, settings } = this.parts;
    const sessionId = request.headers.get("mcp-session-id");
    let color = selector.pick(sessionId);
    let response: Response | undefined;
    for (let attempt = 0; response === undefined; attempt++) {
      selector.started(color);
      try {
        response = await sendUpstream(settings.upstreams[color] + pathAndQuery, { method: exchange.method, headers, body, headerTimeoutMs: settings.headerTimeoutMs });
      } catch (error) {
        selector.finished(color);
        if (!(error instanceof UpstreamFailure)) throw error;
        this.parts.metrics.upstreamError(color, error.kind);
        if (!retryable || error.kind !== "connect" || attempt > 0) return this.failed(exchange, color, error);
        // a refused or reset connection: try the other color when it is up, else this one once more (a stale keep-alive socket)
        const other = otherColor(color);
        if (this.parts.isHealthy(other)) color = other;
        this.parts.metrics.retries++;
      }
    }
    const issued = response.headers.get("mcp-session-id");
    if (issued !== null) selector.pin(issued, color);
    if (sessionId !== null && ((exchange.method === "DELETE" && response.ok) || response.status === 404)) selector.unpin(sessionId);
    const finishedColor = color;
    return this.respond(exchange, server, request, color, response, () => selector.finished(finishedColor));
  }

  private async forward(
    exchange: Exchange,
    server: Server<undefined>,
    request: Request,
    label: UpstreamLabel,
    url: string,
    headers: Headers,
    body: ReadableStream<Uint8Array> | Uint8Array | null,
    retryUrl: string | undefined,
  ): Promise<Response> {
    const send = () => sendUpstream(url, { method: exchange.method, headers, body, headerTimeoutMs: this.parts.settings.headerTimeoutMs });
    let response: Response;
    try {
      response = await send();
    } catch (error) {
      if (!(error instanceof UpstreamFailure)) throw error;
      this.parts.metrics.upstreamError(label, error.kind);
      if (retryUrl === undefined || error.kind !== "connect") return this.failed(exchange, label, error);
      this.parts.metrics.retries++;
      try {
        response = await send();
      } catch (again) {
        if (!(again instanceof UpstreamFailure)) throw again;
        return this.failed(exchange, label, again);
      }
    }
    return this.respond(exchange, server, request, label, response, () => {});
  }

  /** Passes the upstream's answer on; `finished` runs once its body has gone out (or failed). */
  private async respond(exchange: Exchange, server: Server<undefined>, request: Request, label: UpstreamLabel, upstream: Response, finished: () => void): Promise<Response> {
    const headers = downstreamResponseHeaders(upstream.headers, exchange.id);
    const length = upstream.headers.get("content-length");
    const stream = isEventStream(upstream.headers.get("content-type"));
    if (upstream.body === null || (!stream && length !== null && Number(length) <= SMALL_BODY)) {
      let bytes: Uint8Array;
      try {
        bytes = await upstream.bytes();
      } catch {
        return this.answer(exchange, 502, { error: "upstream_failed", message: "the upstream broke off its response" }, {}, label);
      } finally {
        finished();
      }
      this.log(exchange, label, upstream.status, bytes.byteLength);
      return new Response(exchange.method === "HEAD" ? null : bytes, { status: upstream.status, statusText: upstream.statusText, headers });
    }
    // a long stream (SSE, chunked, a download) must not be cut by the idle timeout
    server.timeout(request, 0);
    const status = upstream.status;
    const body = trackBody(upstream.body, (bytes) => {
      finished();
      this.log(exchange, label, status, bytes);
    });
    return new Response(body, { status, statusText: upstream.statusText, headers });
  }

  private failed(exchange: Exchange, label: UpstreamLabel, failure: UpstreamFailure): Response {
    if (failure.kind === "timeout") return this.answer(exchange, 504, { error: "upstream_timeout", message: failure.message }, {}, label);
    return this.answer(exchange, 502, { error: "upstream_unreachable", message: `cannot reach the ${label} upstream: ${failure.message}` }, {}, label);
  }

  /** A JSON answer of our own. */
  private answer(exchange: Exchange, status: number, body: Record<string, unknown>, extra: Record<string, string> = {}, label: UpstreamLabel = "proxy"): Response {
    const text = JSON.stringify(status >= 400 ? { ...body, request_id: exchange.id } : body);
    this.log(exchange, label, status, text.length);
    return new Response(text, { status, headers: { "content-type": "application/json", "x-request-id": exchange.id, ...extra } });
  }

  private log(exchange: Exchange, label: UpstreamLabel, status: number, bytes: number): void {
    this.parts.metrics.request(label, status, (performance.now() - exchange.startedAt) / 1000);
    this.parts.accessLog.record({ ...exchange, status, upstream: label, bytes });
  }
}
