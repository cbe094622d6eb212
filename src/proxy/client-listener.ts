/**
 * The public listeners, TCP (:3712) and the tunnel's Unix socket: Bun.listen socket servers whose
 * connections are ClientConnections, and one timer that checks every connection's deadlines (cheaper than a timer per request).
 */
import type { Socket, SocketHandler, SocketListener } from "bun";
import { pollUntil } from "../lib/poll.ts";
import { ClientConnection, type ClientLimits, type RequestHandler } from "./client-connection.ts";
import { batch, beginBatch, endBatch } from "./outbox.ts";
import { bindPrivateSocket } from "./private-socket.ts";

const TICK_MS = 250;

export class ClientListener {
  private readonly connections = new Set<ClientConnection>();
  private readonly listeners: Array<SocketListener<ClientConnection | undefined>> = [];
  private readonly ticker: ReturnType<typeof setInterval>;

  constructor(
    private readonly handler: RequestHandler,
    private readonly limits: ClientLimits,
  ) {
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.ticker.unref();
  }

  /** Listens on TCP; returns the port. */
  listen(hostname: string, port: number): number {
    const listener = Bun.listen<ClientConnection | undefined>({
      hostname,
      port,
      socket: this.handlers(false),
      data: undefined,
    });
    this.listeners.push(listener);
    return listener.port;
  }

  /** Listens on a Unix socket that only the tunnel may reach (private-socket.ts): its callers are the tunnel's. */
  listenTunnel(path: string): void {
    this.listeners.push(
      bindPrivateSocket(path, () =>
        Bun.listen<ClientConnection | undefined>({ unix: path, socket: this.handlers(true), data: undefined }),
      ),
    );
  }

  private handlers(tunnel: boolean): SocketHandler<ClientConnection | undefined> {
    return {
      open: (socket) => {
        const connection = new ClientConnection(socket as Socket<ClientConnection>, this.handler, this.limits, tunnel);
        socket.data = connection;
        this.connections.add(connection);
      },
      data: (socket, data) => {
        beginBatch();
        try {
          socket.data!.onData(data);
        } finally {
          endBatch();
        }
      },
      drain: (socket) => batch(() => socket.data!.onDrain()),
      close: (socket) => this.closed(socket.data),
      error: (socket) => this.closed(socket.data),
    };
  }

  /** Connections with a request or response in progress. */
  get busy(): number {
    let n = 0;
    for (const connection of this.connections) if (connection.busy) n++;
    return n;
  }

  /** Stops accepting; idle keep-alive connections close now, busy ones after their answer. */
  stopAccepting(): void {
    for (const listener of this.listeners.splice(0)) listener.stop(false);
    for (const connection of this.connections) connection.closeWhenIdle();
  }

  /** Resolves true once no connection is busy, false after `timeoutMs`. */
  async waitIdle(timeoutMs: number): Promise<boolean> {
    return (await pollUntil(() => (this.busy === 0 ? true : undefined), { timeoutMs, intervalMs: 50 })) ?? false;
  }

  /** Closes every connection at once. */
  close(): void {
    clearInterval(this.ticker);
    for (const listener of this.listeners.splice(0)) listener.stop(true);
    for (const connection of [...this.connections]) connection.close();
  }

  private closed(connection: ClientConnection | undefined): void {
    if (!connection || !this.connections.delete(connection)) return;
    batch(() => connection.onClose());
  }

  private tick(): void {
    const now = performance.now();
    batch(() => {
      for (const connection of this.connections) connection.tick(now);
    });
  }
}
