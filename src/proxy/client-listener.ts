/**
 * The public listener: one Bun.listen socket server whose connections are ClientConnections,
 * and one timer that checks every connection's deadlines (cheaper than a timer per request).
 */
import type { Socket, SocketHandler, TCPSocketListener } from "bun";
import { pollUntil } from "../lib/poll.ts";
import { ClientConnection, type ClientLimits, type RequestHandler } from "./client-connection.ts";
import { batch, beginBatch, endBatch } from "./outbox.ts";

const TICK_MS = 250;

export class ClientListener {
  private readonly connections = new Set<ClientConnection>();
  private listener: TCPSocketListener<ClientConnection | undefined> | undefined;
  private readonly ticker: ReturnType<typeof setInterval>;

  constructor(
    private readonly handler: RequestHandler,
    private readonly limits: ClientLimits,
  ) {
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.ticker.unref();
  }

  listen(hostname: string, port: number): number {
    const handlers: SocketHandler<ClientConnection | undefined> = {
      open: (socket) => {
        const connection = new ClientConnection(socket as Socket<ClientConnection>, this.handler, this.limits);
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
    this.listener = Bun.listen<ClientConnection | undefined>({ hostname, port, socket: handlers, data: undefined });
    return this.listener.port;
  }

  /** Connections with a request or response in progress. */
  get busy(): number {
    let n = 0;
    for (const connection of this.connections) if (connection.busy) n++;
    return n;
  }

  /** Stops accepting; idle keep-alive connections close now, busy ones after their answer. */
  stopAccepting(): void {
    this.listener?.stop(false);
    this.listener = undefined;
    for (const connection of this.connections) connection.closeWhenIdle();
  }

  /** Resolves true once no connection is busy, false after `timeoutMs`. */
  async waitIdle(timeoutMs: number): Promise<boolean> {
    return (await pollUntil(() => (this.busy === 0 ? true : undefined), { timeoutMs, intervalMs: 50 })) ?? false;
  }

  /** Closes every connection at once. */
  close(): void {
    clearInterval(this.ticker);
    this.listener?.stop(true);
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
