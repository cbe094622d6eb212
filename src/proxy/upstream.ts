/**
 * A keep-alive pool of raw connections to one upstream origin (http://host:port). Bun's fetch
 * keeps only about 64 idle connections in all, so at 256 concurrent requests it opens a new TCP
 * connection for most of them; this pool keeps one per concurrent request (decision 14).
 */
import type { ColorProver } from "./color-prover.ts";
import { eventNow } from "./outbox.ts";
import { type ConnectionOwner, UpstreamConnection, UpstreamFailure, upstreamHandlers } from "./upstream-connection.ts";

export { type FailureKind, UpstreamConnection, UpstreamFailure } from "./upstream-connection.ts";

/** Idle connections are closed before a typical upstream's keep-alive timeout (Bun: 10 s) can race a reuse. */
const IDLE_MS = 4_000;
const MAX_IDLE = 1_024;

export class UpstreamPool implements ConnectionOwner {
  private readonly idle: UpstreamConnection[] = [];
  private readonly hostname: string;
  private readonly port: number;
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(
    readonly origin: string,
    /** For a color's pool: its new connections prove the color first (color-prover.ts). */
    private readonly prover: ColorProver | null = null,
  ) {
    const url = new URL(origin);
    if (url.protocol !== "http:") throw new Error(`only http:// upstreams are supported, not ${origin}`);
    this.hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.port = Number(url.port || 80);
    this.sweeper = setInterval(() => this.sweep(), 1_000);
    this.sweeper.unref();
  }

  /** An idle keep-alive connection, or undefined. */
  reuse(): UpstreamConnection | undefined {
    let connection: UpstreamConnection | undefined;
    while ((connection = this.idle.pop()) && connection.closed);
    return connection;
  }

  /**
   * A new connection, usable at once: writes wait in its outbox until it is open. When the
   * connect fails, `failed` is told with kind "connect" (nothing was sent).
   */
  open(failed: (failure: UpstreamFailure) => void): UpstreamConnection {
    const connection = new UpstreamConnection(this, this.prover?.begin() ?? null);
    Bun.connect<UpstreamConnection>({
      hostname: this.hostname,
      port: this.port,
      socket: upstreamHandlers,
      data: connection,
    }).catch((error: Error & { code?: string }) => {
      if (connection.closed) return;
      connection.destroy();
      failed(new UpstreamFailure("connect", error.code ?? error.message));
    });
    return connection;
  }

  release(connection: UpstreamConnection): void {
    if (this.idle.length >= MAX_IDLE) return connection.destroy();
    connection.lastUsed = eventNow();
    this.idle.push(connection);
  }

  forget(connection: UpstreamConnection): void {
    const at = this.idle.lastIndexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const connection of [...this.idle]) connection.destroy();
  }

  private sweep(): void {
    const now = performance.now();
    while (this.idle.length > 0 && now - this.idle[0]!.lastUsed > IDLE_MS) this.idle.shift()!.destroy();
  }
}
