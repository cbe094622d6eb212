/**
 * The request path: guard, route, wait out a pause, pick a color, forward, log. Frame requests go
 * to the live color (or the one their MCP session is pinned to). A request that reached no
 * upstream may go again (see `retry`); every answer, ours or an upstream's, complete or cut, is
 * logged and counted as the caller got it.
 */
import type { AccessLog } from "./access-log.ts";
import { type Color, otherColor } from "./admin-schema.ts";
import type { ClientConnection, ClientRefusal, RequestHandler, RequestHead, RequestSink } from "./client-connection.ts";
import type { ColorProver } from "./color-prover.ts";
import type { ColorSelector } from "./color-selector.ts";
import { type Attempt, Exchange, type ExchangeHost } from "./exchange.ts";
import { upstreamRequestBytes, upstreamRequestHead } from "./forward-headers.ts";
import type { Metrics, UpstreamLabel } from "./metrics.ts";
import type { PauseController } from "./pause-controller.ts";
import { PROXIED_METHODS, parseTarget, type Refusal, refuse } from "./request-guard.ts";
import { requestId } from "./request-id.ts";
import { mayResend } from "./retry-policy.ts";
import type { Router } from "./router.ts";
import type { ProxySettings } from "./settings.ts";
import { UpstreamPool } from "./upstream.ts";
import type { ResponseHead, UpstreamFailure } from "./upstream-connection.ts";

export interface ProxyParts {
  settings: ProxySettings;
  router: Router;
  selector: ColorSelector;
  pause: PauseController;
  metrics: Metrics;
  accessLog: AccessLog;
  isHealthy(color: Color): boolean;
  /** What each color's new connections must prove first (color-prover.ts). */
  provers: Record<Color, ColorProver>;
  /** A connection to `color` was refused: its health check should know at once. */
  markDown(color: Color, reason: string): void;
  /** The header line that tells a color a request came through this proxy (forwardStamp). */
  stampLine: string;
}

/** What a log line needs of a request the proxy answered itself. */
interface Answered {
  id: string;
  method: string;
  path: string;
  startedAt: number;
}

const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n";
/** Reason phrases of the answers the proxy writes itself (node:http's table would cost ~8 MB of RSS to load). */
const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

export class ProxyHandler implements RequestHandler, ExchangeHost {
  private readonly pools = new Map<string, UpstreamPool>();
  private readonly fixedAttempts = new Map<string, Attempt>();
  private readonly colorAttempts: Partial<Record<Color, Attempt>> = {};
  readonly headerTimeoutMs: number;

  constructor(private readonly parts: ProxyParts) {
    this.headerTimeoutMs = parts.settings.headerTimeoutMs;
  }

  begin(connection: ClientConnection, head: RequestHead): RequestSink | null {
    const { settings, router, pause } = this.parts;
    const { method, map } = head;
    const trusted = this.trusted(connection);
    const answered: Answered = {
      id: requestId(map["x-request-id"], trusted),
      method,
      path: "",
      startedAt: head.startedAt,
    };
    const target = parseTarget(head.url);
    if ("status" in target) return this.refused(connection, answered, target);
    answered.path = target.path;
    if (target.path === "/healthz" && (method === "GET" || method === "HEAD")) {
      this.answer(connection, answered, 200, {
        status: "ok",
        service: "axe-proxy",
        live: this.parts.selector.live,
        instance: settings.instance,
      });
      return null;
    }
    const refusal = refuse(method, target.path, map, head.lower, settings);
    if (refusal) return this.refused(connection, answered, refusal);
    const route = router.match(target.path);
    if (!route) {
      this.answer(connection, answered, 404, { error: "no_route", message: `no upstream serves ${target.path}` });
      return null;
    }
    const websocket = head.upgrade && /(^|,)\s*websocket\s*(,|$)/i.test(map.upgrade ?? "");
    if (websocket && (!route.websocket || method !== "GET"))
      return this.refused(connection, answered, {
        status: 400,
        error: "upgrade_refused",
        message: `${target.path} does not take WebSocket upgrades`,
      });
    const chunked = map["transfer-encoding"] !== undefined;
    const length = map["content-length"];
    let framing = "";
    if (chunked) framing = "transfer-encoding: chunked\r\n";
    else if (length !== undefined) framing = `content-length: ${length}\r\n`;
    else if (method === "POST" || method === "PUT" || method === "PATCH") framing = "content-length: 0\r\n";
    if (websocket) framing = `connection: upgrade\r\nupgrade: ${map.upgrade}\r\n`;
    const host = target.authority ?? map.host!;
    const context = {
      peer: connection.peer,
      trusted,
      requestId: answered.id,
      host,
      stamp: route.kind === "frame" ? this.parts.stampLine : "",
    };
    const requestLine = `${method} ${target.pathAndQuery} HTTP/1.1\r\n`;
    // the caller's header lines as its own bytes when they read as the strings would write them
    const upstreamHead =
      (head.source && upstreamRequestBytes(requestLine, head.source, head.lines, head.lower, map, context, framing)) ||
      `${requestLine}${upstreamRequestHead(head.names, head.lower, connection.headValues(), map, context)}${framing}\r\n`;
    const first = this.firstAttempt(route, map["mcp-session-id"] ?? null);
    const exchange = new Exchange(
      this,
      connection,
      answered.id,
      method,
      target.path,
      head.startedAt,
      upstreamHead,
      chunked,
      websocket,
      first,
    );
    exchange.frame = route.kind === "frame";
    exchange.sessionId = map["mcp-session-id"] ?? null;
    exchange.contentType = map["content-type"];
    if (
      head.minor === 1 &&
      (chunked || (length !== undefined && length !== "0")) &&
      /100-continue/i.test(map.expect ?? "")
    )
      connection.writeText(CONTINUE); // the proxy reads the body either way: no need to wait for the upstream's word
    if (!pause.paused) exchange.start();
    else
      void pause.wait().then((resumed) => {
        if (resumed) return exchange.start();
        this.parts.metrics.pauseTimeouts++;
        exchange.abandon();
        this.answer(
          connection,
          answered,
          503,
          { error: "paused", message: `the proxy is paused; held for ${settings.pauseTimeoutMs} ms` },
          "retry-after: 1\r\n",
          "proxy",
          false,
        );
      });
    return exchange;
  }

  /** The tunnel (its Unix socket, or a trusted proxy's address): what it says of the caller is believed. */
  private trusted(connection: ClientConnection): boolean {
    return connection.tunnel || this.parts.settings.trustedProxies.has(connection.peer);
  }

  /** Closes idle upstream connections. */
  close(): void {
    for (const pool of this.pools.values()) pool.close();
  }

  /** Attempts are made once per upstream (they are read, never changed). */
  private firstAttempt(
    route: { kind: "frame" } | { kind: "fixed"; upstream: string },
    session: string | null,
  ): Attempt {
    if (route.kind === "frame") return this.colorAttempt(this.parts.selector.pick(session));
    let attempt = this.fixedAttempts.get(route.upstream);
    if (!attempt)
      this.fixedAttempts.set(
        route.upstream,
        (attempt = { pool: this.pool(route.upstream), label: "fixed", color: null }),
      );
    return attempt;
  }

  private colorAttempt(color: Color): Attempt {
    return (this.colorAttempts[color] ??= {
      pool: this.pool(this.parts.settings.upstreams[color], this.parts.provers[color]),
      label: color,
      color,
    });
  }

  private pool(origin: string, prover: ColorProver | null = null): UpstreamPool {
    let pool = this.pools.get(origin);
    if (!pool) this.pools.set(origin, (pool = new UpstreamPool(origin, prover)));
    return pool;
  }

  started(color: Color): void {
    this.parts.selector.started(color);
  }

  finished(color: Color): void {
    this.parts.selector.finished(color);
  }

  answered(exchange: Exchange, color: Color, head: ResponseHead): void {
    const selector = this.parts.selector;
    if (head.headers.sessionId !== null) selector.pin(head.headers.sessionId, color);
    const session = exchange.sessionId;
    if (session !== null && ((exchange.method === "DELETE" && head.status < 300) || head.status === 404))
      selector.unpin(session);
  }

  /**
   * Where a request goes again after `failure`, or null. Nothing was sent after a refused connect,
   * so any request goes to the other color when it is healthy; a connection closed before any
   * answer byte is retried only when sending twice cannot harm (retry-policy.ts): once on a fresh
   * connection when it was a stale keep-alive, else on the other color. A timeout never; a request
   * of an MCP session never leaves its color (the other would not know the session).
   */
  retry(exchange: Exchange, failure: UpstreamFailure): Attempt | null {
    const { color, label } = exchange.attempt;
    this.parts.metrics.upstreamError(label, failure.kind);
    if (color && failure.kind === "connect") this.parts.markDown(color, failure.message);
    if (exchange.tries >= 2 || exchange.replay === null) return null;
    const other =
      color && exchange.sessionId === null && this.parts.isHealthy(otherColor(color)) ? otherColor(color) : null;
    let next: Attempt | null = null;
    if (failure.kind === "connect") next = other ? this.colorAttempt(other) : null;
    else if (failure.kind === "reset" && mayResend(exchange)) {
      if (exchange.onReusedConnection && exchange.tries === 0)
        next = exchange.attempt; // a stale keep-alive: same upstream, fresh connection
      else if (other) next = this.colorAttempt(other);
      else if (exchange.tries === 0) next = exchange.attempt;
    }
    if (next) this.parts.metrics.retries++;
    return next;
  }

  fail(exchange: Exchange, failure: UpstreamFailure): void {
    const label = exchange.attempt.label;
    if (failure.kind === "timeout")
      return this.answer(
        exchange.client,
        exchange,
        504,
        { error: "upstream_timeout", message: failure.message },
        "",
        label,
      );
    this.answer(
      exchange.client,
      exchange,
      502,
      { error: "upstream_unreachable", message: `cannot reach the ${label} upstream: ${failure.message}` },
      "",
      label,
    );
  }

  done(exchange: Exchange, completed: boolean): void {
    this.log(exchange, exchange.attempt.label, exchange.status || 502, exchange.bytesSent, completed);
  }

  refuse(connection: ClientConnection, refusal: ClientRefusal, head: RequestHead | null): void {
    const answered: Answered = {
      id: requestId(head?.map["x-request-id"], this.trusted(connection)),
      method: head?.method ?? "-",
      path: head ? head.url.split("?")[0]! : "-",
      startedAt: head?.startedAt ?? performance.now(),
    };
    this.refused(connection, answered, refusal);
  }

  private refused(connection: ClientConnection, answered: Answered, refusal: ClientRefusal): null {
    this.parts.metrics.refusal(refusal.error);
    this.answer(
      connection,
      answered,
      refusal.status,
      { error: refusal.error, message: refusal.message },
      refusal.status === 405 ? `allow: ${PROXIED_METHODS}\r\n` : "",
      "proxy",
      false,
    );
    return null;
  }

  /** A JSON answer of our own; `reusable` false closes the connection after it. */
  private answer(
    connection: ClientConnection,
    answered: Answered,
    status: number,
    body: Record<string, unknown>,
    extra = "",
    label: UpstreamLabel = "proxy",
    reusable = true,
  ): void {
    const text = JSON.stringify(status >= 400 ? { ...body, request_id: answered.id } : body);
    const head =
      `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n` +
      `x-request-id: ${answered.id}\r\n${extra}${connection.connectionHeader(reusable)}\r\n`;
    connection.write(Buffer.from(answered.method === "HEAD" ? head : head + text));
    this.log(answered, label, status, answered.method === "HEAD" ? 0 : text.length, true);
    connection.answerDone(reusable);
  }

  private log(answered: Answered, label: UpstreamLabel, status: number, bytes: number, completed: boolean): void {
    const now = performance.now(); // one clock read for the metric and the log line
    this.parts.metrics.request(
      label,
      status,
      (now - answered.startedAt) / 1000,
      completed,
      answered.method,
      answered.path,
    );
    this.parts.accessLog.record(
      answered.id,
      answered.method,
      answered.path,
      status,
      label,
      bytes,
      answered.startedAt,
      completed,
      now,
    );
  }
}

export type { Refusal };
