/**
 * Our own HTTP/1.1 client for upstreams, with a keep-alive pool per origin. Bun's fetch keeps
 * only about 64 idle connections in all, so at 256 concurrent requests it opens a new TCP
 * connection for most of them; this pool keeps one per concurrent request (decision 14).
 */
import {
  Connection,
  type ConnectionOwner,
  connectionHandlers,
  UpstreamFailure,
  type UpstreamRequest,
  type UpstreamResponse,
} from "./upstream-connection.ts";

export {
  type FailureKind,
  UpstreamFailure,
  type UpstreamRequest,
  type UpstreamResponse,
} from "./upstream-connection.ts";

const IDLE_MS = 4_000;
const MAX_IDLE = 1_024;

/** Keep-alive connections to one origin (http://host:port). */
export class UpstreamPool implements ConnectionOwner {
  private readonly idle: Connection[] = [];
  private readonly hostname: string;
  private readonly port: number;
  /** host:port, for requests that arrive without a Host header. */
  readonly host: string;
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(readonly origin: string) {
    const url = new URL(origin);
    if (url.protocol !== "http:") throw new Error(`only http:// upstreams are supported, not ${origin}`);
    this.hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.port = Number(url.port || 80);
    this.host = url.host;
    // idle connections are closed before a typical upstream's keep-alive timeout (Bun: 10 s) can race a reuse
    this.sweeper = setInterval(() => this.sweep(), 1_000);
    this.sweeper.unref();
  }

  /** Not async: a request on an idle connection skips the extra promise of the connect path. */
  send(request: UpstreamRequest): Promise<UpstreamResponse> {
    let connection: Connection | undefined;
    while ((connection = this.idle.pop()) && connection.closed);
    if (connection) {
      const reused = connection;
      return reused.send(
        request,
        setTimeout(() => reused.timedOut(), request.headerTimeoutMs),
      );
    }
    return this.sendOnNew(request);
  }

  private async sendOnNew(request: UpstreamRequest): Promise<UpstreamResponse> {
    let connection: Connection | undefined;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      connection?.timedOut();
    }, request.headerTimeoutMs);
    try {
      connection = await this.connect(request.headerTimeoutMs);
    } catch (error) {
      clearTimeout(timer);
      throw error;
    }
    if (timedOut) {
      connection.destroy();
      throw new UpstreamFailure("timeout", `no connection within ${request.headerTimeoutMs} ms`);
    }
    return connection.send(request, timer);
  }

  release(connection: Connection): void {
    if (this.idle.length >= MAX_IDLE) return connection.destroy();
    connection.lastUsed = performance.now();
    this.idle.push(connection);
  }

  forget(connection: Connection): void {
    const at = this.idle.indexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const connection of [...this.idle]) connection.destroy();
  }

  private async connect(timeoutMs: number): Promise<Connection> {
    const connection = new Connection(this);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connecting = Bun.connect<Connection>({
      hostname: this.hostname,
      port: this.port,
      socket: connectionHandlers,
      data: connection,
    });
    try {
      const socket = await Promise.race([
        connecting,
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(
              () => reject(new UpstreamFailure("timeout", `no connection within ${timeoutMs} ms`)),
              timeoutMs,
            )),
        ),
      ]);
      socket.setNoDelay(true);
      connection.socket = socket;
      return connection;
    } catch (error) {
      if (error instanceof UpstreamFailure) {
        connecting.then(
          (late) => late.terminate(),
          () => undefined,
        );
        throw error;
      }
      const e = error as Error & { code?: string };
      throw new UpstreamFailure("connect", e.code ?? e.message);
    } finally {
      clearTimeout(timer);
    }
  }

  private sweep(): void {
    const now = performance.now();
    while (this.idle.length > 0 && now - this.idle[0]!.lastUsed > IDLE_MS) this.idle.shift()!.destroy();
  }
}
