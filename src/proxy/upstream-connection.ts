/**
 * One keep-alive HTTP/1.1 connection to an upstream: writes a request (its body streamed with
 * back-pressure), reads the answer's head, and hands the body over whole (small, known length)
 * or as a stream that pauses the socket when the caller reads slowly. Failures are
 * UpstreamFailures that say whether the request may be retried.
 */
import type { Socket, SocketHandler } from "bun";
import { ChunkedDecoder, ProtocolError, parseResponseHead, type ResponseHead } from "./http1-response.ts";

/** connect: nothing was sent. reset: closed before any answer. broken: the answer broke off. */
export type FailureKind = "connect" | "reset" | "timeout" | "broken";

export class UpstreamFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

export interface UpstreamRequest {
  method: string;
  /** Path and query. */
  target: string;
  /** Header lines, each "name: value\r\n", without framing headers (the client adds those). */
  head: string;
  body: ReadableStream<Uint8Array> | Uint8Array | null;
  /** Content-Length of a streamed body, when the caller sent one. */
  bodyLength: number | null;
  /** Connect plus response headers. */
  headerTimeoutMs: number;
  /** Runs once when the response body has been delivered (or failed, or was abandoned); `streamed` when it went out as a stream. */
  onDone(bytes: number, completed: boolean, status: number, streamed: boolean): void;
}

export interface UpstreamResponse {
  head: ResponseHead;
  /** The whole body, when small and of known length; otherwise `stream`. */
  bytes: Uint8Array | null;
  stream: ReadableStream<Uint8Array> | null;
}

/** Bodies of known length up to this size are collected and handed over whole. */
const SMALL_BODY = 65_536;
const MAX_HEAD = 65_536;
const EMPTY = new Uint8Array(0);

interface Exchange {
  request: UpstreamRequest;
  resolve(response: UpstreamResponse): void;
  reject(failure: UpstreamFailure): void;
  timer: ReturnType<typeof setTimeout>;
  state: "head" | "body";
  answered: boolean;
  resolved: boolean;
  bodySent: boolean;
  head?: ResponseHead;
  received: number;
  small?: Uint8Array;
  controller?: ReadableStreamDefaultController<Uint8Array>;
  decoder?: ChunkedDecoder;
}

const handlers: SocketHandler<Connection> = {
  data: (socket, data) => socket.data.onData(data),
  drain: (socket) => socket.data.onDrain(),
  close: (socket) => socket.data.onClose(),
  error: (socket) => socket.data.onClose(),
  end: (socket) => socket.data.onClose(),
  connectError: () => undefined,
};

/** The pool a connection goes back to. */
export interface ConnectionOwner {
  /** host:port, for requests that arrive without a Host header. */
  readonly host: string;
  release(connection: Connection): void;
  forget(connection: Connection): void;
}

export const connectionHandlers = handlers;

export class Connection {
  socket!: Socket<Connection>;
  lastUsed = 0;
  closed = false;
  private exchange: Exchange | null = null;
  private headBuffer: Buffer | null = null;
  private pending: Buffer | null = null;
  private drained: (() => void) | null = null;

  constructor(private readonly pool: ConnectionOwner) {}

  send(request: UpstreamRequest, timer: ReturnType<typeof setTimeout>): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      const exchange: Exchange = {
        request,
        resolve,
        reject,
        timer,
        state: "head",
        answered: false,
        resolved: false,
        bodySent: false,
        received: 0,
      };
      this.exchange = exchange;
      this.writeRequest(exchange);
    });
  }

  timedOut(): void {
    this.fail(
      new UpstreamFailure("timeout", `no response headers within ${this.exchange?.request.headerTimeoutMs} ms`),
    );
  }

  private writeRequest(exchange: Exchange): void {
    const { method, target, head, body, bodyLength } = exchange.request;
    let framing = "";
    if (body instanceof Uint8Array) framing = `content-length: ${body.byteLength}\r\n`;
    else if (body)
      framing = bodyLength !== null ? `content-length: ${bodyLength}\r\n` : "transfer-encoding: chunked\r\n";
    else if (method === "POST" || method === "PUT" || method === "PATCH") framing = "content-length: 0\r\n";
    // an HTTP/1.0 caller may send no Host; HTTP/1.1 requires one, so name the upstream
    const host = head.startsWith("host:") || head.includes("\r\nhost:") ? "" : `host: ${this.pool.host}\r\n`;
    const start = Buffer.from(`${method} ${target} HTTP/1.1\r\n${host}${head}${framing}\r\n`, "latin1");
    if (body instanceof Uint8Array || body === null) {
      this.write(body && body.byteLength > 0 ? Buffer.concat([start, body]) : start);
      exchange.bodySent = true;
      return;
    }
    this.write(start);
    void this.pumpBody(exchange, body, bodyLength === null);
  }

  private async pumpBody(exchange: Exchange, body: ReadableStream<Uint8Array>, chunked: boolean): Promise<void> {
    const reader = body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (this.exchange !== exchange) return void reader.cancel().catch(() => undefined);
        if (done) break;
        if (value.byteLength === 0) continue;
        this.write(chunked ? Buffer.concat([Buffer.from(`${value.byteLength.toString(16)}\r\n`), value, CRLF]) : value);
        if (this.pending) await new Promise<void>((resolve) => (this.drained = resolve));
      }
      if (chunked) this.write(LAST_CHUNK);
      exchange.bodySent = true;
    } catch {
      if (this.exchange === exchange) this.fail(new UpstreamFailure("broken", "the request body broke off"));
    }
  }

  private write(data: Buffer | Uint8Array): void {
    if (this.closed) return;
    if (this.pending) {
      this.pending = Buffer.concat([this.pending, data]);
      return;
    }
    const written = this.socket.write(data);
    if (written < data.byteLength) this.pending = Buffer.from(data.subarray(Math.max(0, written)));
  }

  onDrain(): void {
    if (!this.pending) return;
    const data = this.pending;
    this.pending = null;
    const written = this.socket.write(data);
    if (written < data.byteLength) this.pending = data.subarray(Math.max(0, written));
    else this.wakeWriter();
  }

  onData(data: Buffer): void {
    const exchange = this.exchange;
    if (!exchange) return this.destroy(); // bytes nobody asked for: never reuse this connection
    exchange.answered = true;
    if (exchange.state === "head") {
      const buffer = this.headBuffer ? Buffer.concat([this.headBuffer, data]) : data;
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buffer.length > MAX_HEAD) return this.fail(new UpstreamFailure("broken", "response head too large"));
        this.headBuffer = Buffer.from(buffer);
        return;
      }
      this.headBuffer = null;
      let head: ResponseHead;
      try {
        head = parseResponseHead(buffer.toString("latin1", 0, end), exchange.request.method);
      } catch (error) {
        return this.fail(new UpstreamFailure("broken", (error as Error).message));
      }
      if (head.status < 200) {
        if (head.status === 101)
          return this.fail(new UpstreamFailure("broken", "upstream switched protocols; upgrades are not proxied"));
        if (buffer.length > end + 4) this.onData(buffer.subarray(end + 4)); // an interim 1xx: the real head follows
        return;
      }
      clearTimeout(exchange.timer);
      exchange.head = head;
      exchange.state = "body";
      this.startBody(exchange, head);
      if (buffer.length > end + 4 && this.exchange === exchange) this.consumeBody(exchange, buffer, end + 4);
      return;
    }
    this.consumeBody(exchange, data, 0);
  }

  private startBody(exchange: Exchange, head: ResponseHead): void {
    if (head.framing === "none") {
      this.resolve(exchange, EMPTY, null);
      this.finish(exchange, true);
    } else if (head.framing === "length" && head.length <= SMALL_BODY) {
      exchange.small = new Uint8Array(head.length);
      if (head.length === 0) {
        this.resolve(exchange, EMPTY, null);
        this.finish(exchange, true);
      }
    } else {
      if (head.framing === "chunked") exchange.decoder = new ChunkedDecoder();
      const stream = new ReadableStream<Uint8Array>({
        start: (controller) => void (exchange.controller = controller),
        pull: () => this.socket.resume(),
        cancel: () => {
          if (this.exchange !== exchange) return;
          this.exchange = null;
          this.done(exchange, false);
          this.destroy();
        },
      });
      this.resolve(exchange, null, stream);
    }
  }

  private consumeBody(exchange: Exchange, data: Uint8Array, offset: number): void {
    const head = exchange.head!;
    if (exchange.small) {
      const take = Math.min(head.length - exchange.received, data.length - offset);
      exchange.small.set(data.subarray(offset, offset + take), exchange.received);
      exchange.received += take;
      if (offset + take < data.length)
        return this.fail(new UpstreamFailure("broken", "upstream sent more than its Content-Length"));
      if (exchange.received === head.length) {
        this.resolve(exchange, exchange.small, null);
        this.finish(exchange, true);
      }
      return;
    }
    const controller = exchange.controller!;
    const deliver = (piece: Uint8Array) => {
      exchange.received += piece.byteLength;
      controller.enqueue(new Uint8Array(piece)); // a copy: the socket may reuse its buffer
    };
    if (exchange.decoder) {
      let end: number;
      try {
        end = exchange.decoder.feed(data, offset, deliver);
      } catch (error) {
        return this.fail(new UpstreamFailure("broken", error instanceof ProtocolError ? error.message : String(error)));
      }
      if (end >= 0) {
        controller.close();
        this.finish(exchange, end === data.length);
      }
    } else if (head.framing === "length") {
      const take = Math.min(head.length - exchange.received, data.length - offset);
      deliver(data.subarray(offset, offset + take));
      if (exchange.received === head.length) {
        controller.close();
        this.finish(exchange, offset + take === data.length);
      }
    } else {
      deliver(data.subarray(offset)); // read until the upstream closes
    }
    if (this.exchange === exchange && (controller.desiredSize ?? 1) <= 0) this.socket.pause();
  }

  private resolve(exchange: Exchange, bytes: Uint8Array | null, stream: ReadableStream<Uint8Array> | null): void {
    exchange.resolved = true;
    exchange.resolve({ head: exchange.head!, bytes, stream });
  }

  /** The response is complete; `reusable` is false when stray bytes followed it. */
  private finish(exchange: Exchange, reusable: boolean): void {
    this.exchange = null;
    this.done(exchange, true);
    if (reusable && exchange.head!.keepAlive && exchange.bodySent && !this.pending) this.pool.release(this);
    else this.destroy();
  }

  /** A timeout or a protocol error: the exchange fails and the connection is dropped. */
  private fail(failure: UpstreamFailure): void {
    const exchange = this.exchange;
    this.exchange = null;
    this.destroy();
    if (exchange) this.abandon(exchange, failure);
  }

  onClose(): void {
    this.wakeWriter();
    if (this.closed) return;
    this.closed = true;
    this.pool.forget(this);
    const exchange = this.exchange;
    this.exchange = null;
    if (!exchange) return;
    if (exchange.state === "body" && exchange.head!.framing === "close" && exchange.controller) {
      exchange.controller.close();
      this.done(exchange, true);
      return;
    }
    const kind = exchange.state === "head" && !exchange.answered ? "reset" : "broken";
    this.abandon(
      exchange,
      new UpstreamFailure(
        kind,
        kind === "reset"
          ? "the upstream closed the connection before answering"
          : "the upstream broke off its response",
      ),
    );
  }

  private abandon(exchange: Exchange, failure: UpstreamFailure): void {
    clearTimeout(exchange.timer);
    if (!exchange.resolved) return exchange.reject(failure);
    exchange.controller?.error(failure);
    this.done(exchange, false);
  }

  private done(exchange: Exchange, completed: boolean): void {
    exchange.request.onDone(
      exchange.received,
      completed,
      exchange.head?.status ?? 0,
      exchange.controller !== undefined,
    );
  }

  /** A request body waiting for the socket to drain must not wait forever on a closed one. */
  private wakeWriter(): void {
    const wake = this.drained;
    this.drained = null;
    wake?.();
  }

  destroy(): void {
    this.wakeWriter();
    if (!this.closed) {
      this.closed = true;
      this.pool.forget(this);
      this.socket.terminate();
    }
  }
}

const CRLF = Buffer.from("\r\n");
const LAST_CHUNK = Buffer.from("0\r\n\r\n");
