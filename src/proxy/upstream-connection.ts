/**
 * One keep-alive connection to an upstream, its answers framed by llhttp (strict). It carries one
 * exchange at a time: the exchange writes the request through `out`, and hears the response head,
 * body pieces and end through ResponseSink. A connection goes back to its pool only when the
 * response ended cleanly with nothing after it; a byte that arrives while it is idle, or after a
 * complete response, closes it (so one client never reads another's answer). A new connection to a
 * color that proves itself carries the exchange's request only once the color has proved it is
 * ours (color-prover.ts).
 */
import type { Socket, SocketHandler } from "bun";
import type { ProofExchange } from "./color-prover.ts";
import type { ResponseHeaders } from "./forward-headers.ts";
import { ERROR, HttpParser, RESPONSE, SKIP_BODY } from "./llhttp.ts";
import { batch, beginBatch, endBatch, Outbox } from "./outbox.ts";
import { ResponseHeadReader } from "./response-head.ts";

/** connect: nothing was sent. reset: closed before any answer byte. broken: the answer broke off or was malformed. */
export type FailureKind = "connect" | "reset" | "timeout" | "broken";

export class UpstreamFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

export interface ResponseHead {
  status: number;
  reason: string;
  /** What the proxy read of its headers, and the lines the caller gets. */
  headers: ResponseHeaders;
  /** The upstream's Content-Length, when it framed the body so. */
  length: number | null;
  /** No body follows (HEAD, 204, 304). */
  bodiless: boolean;
  /** The body runs until the upstream closes. */
  untilClose: boolean;
}

/** The exchange on a connection. */
export interface ResponseSink {
  onResponseHead(head: ResponseHead): void;
  onResponseBody(data: Buffer, at: number, length: number): void;
  onResponseEnd(): void;
  /** A 101 to an upgrade request: from now on the two sockets are piped; `rest` came after the head. */
  onUpgraded(head: ResponseHead, rest: Buffer): void;
  onUpstreamFailure(failure: UpstreamFailure): void;
  /** The upstream took what was queued for it (request body back-pressure). */
  onUpstreamDrain(): void;
}

/** The pool a connection goes back to. */
export interface ConnectionOwner {
  release(connection: UpstreamConnection): void;
  forget(connection: UpstreamConnection): void;
}

/** Response heads larger than these are refused as broken (a runaway upstream). */
const LIMITS = { maxHeadBytes: 65_536, maxHeaderCount: 256, maxLineBytes: 65_536 };
const EMPTY = Buffer.alloc(0);

export const upstreamHandlers: SocketHandler<UpstreamConnection> = {
  open: (socket) => socket.data.onOpen(socket),
  data: (socket, data) => {
    beginBatch();
    try {
      socket.data.onData(data);
    } finally {
      endBatch();
    }
  },
  drain: (socket) => batch(() => socket.data.onDrain()),
  close: (socket) => batch(() => socket.data.onClose()),
  error: (socket) => batch(() => socket.data.onClose()),
  end: (socket) => batch(() => socket.data.onClose()),
  connectError: () => undefined,
};

export class UpstreamConnection extends HttpParser {
  readonly out = new Outbox(() => this.sink?.onUpstreamDrain());
  socket: Socket<UpstreamConnection> | null = null;
  lastUsed = 0;
  closed = false;
  /** Carried a complete exchange before: a failure on it may be a stale keep-alive. */
  reused = false;
  /** Set for a piped WebSocket: bytes go straight to this function, and its end to `pipeClosed`. */
  pipe: ((data: Buffer) => void) | null = null;
  pipeClosed: (() => void) | null = null;
  private sink: ResponseSink | null = null;
  private skipBody = false;
  private answered = false;
  private requestSent = false;
  private interim = false;
  private upgradeAsked = false;
  private readonly reader = new ResponseHeadReader(LIMITS);
  private statusText = "";
  private head: ResponseHead | null = null;
  private keepAlive = false;
  private paused = false;

  constructor(
    private readonly owner: ConnectionOwner,
    /** A new connection to a color that proves itself: nothing of the caller's goes out before the proof. */
    private proof: ProofExchange | null = null,
  ) {
    super(RESPONSE);
  }

  onOpen(socket: Socket<UpstreamConnection>): void {
    if (this.closed) return socket.terminate(); // given up on (a timeout) while connecting
    socket.setNoDelay(true);
    this.socket = socket;
    if (!this.proof) return this.out.attach(socket as Socket<unknown>);
    const request = this.proof.request; // ~150 bytes into an empty send buffer: taken whole, or the connection is not used
    if (socket.write(request) !== request.length) this.refuse("the proof request could not be sent whole");
  }

  /** The answer to the proof request: only a proof lets the exchange's request out (color-prover.ts). */
  private onProofData(proof: ProofExchange, data: Buffer): void {
    const step = proof.read(data);
    if (step.kind === "more") return;
    this.proof = null;
    if (step.kind === "refused") return this.refuse(step.reason);
    this.out.attach(this.socket as Socket<unknown>);
  }

  /** Not the color: the exchange hears it as a refused connect (nothing of its was sent; the color is marked down). */
  private refuse(reason: string): void {
    this.fail(new UpstreamFailure("connect", reason));
  }

  /** Starts an exchange: the caller then writes the request through `out`. */
  begin(sink: ResponseSink, method: string, upgrade: boolean): void {
    if (this.paused) this.resume();
    this.paused = false;
    this.sink = sink;
    this.skipBody = method === "HEAD";
    this.upgradeAsked = upgrade;
    this.answered = false;
    this.requestSent = false;
    this.head = null;
  }

  /** The request (head and body) has been handed to `out` whole. */
  requestComplete(): void {
    this.requestSent = true;
  }

  pauseReading(): void {
    this.socket?.pause();
  }

  resumeReading(): void {
    this.socket?.resume();
  }

  onData(data: Buffer): void {
    if (this.proof) return this.onProofData(this.proof, data);
    if (this.pipe) return this.pipe(data);
    const sink = this.sink;
    if (!sink) return this.destroy(); // a byte while idle: never reuse this connection
    this.answered = true;
    const errno = this.execute(data);
    if (errno === ERROR.OK) {
      if (!this.head) this.reader.detach(); // the head goes on in the next read: this read's buffer goes back to Bun
      return;
    }
    if (errno === ERROR.PAUSED) {
      // the response is complete; anything after it is a byte nobody asked for
      this.paused = true;
      return this.complete(sink, this.consumed() === data.byteLength);
    }
    if (errno === ERROR.PAUSED_UPGRADE && this.head) {
      this.paused = true;
      this.sink = null;
      const rest = data.subarray(this.consumed());
      return sink.onUpgraded(this.head, rest.byteLength > 0 ? Buffer.from(rest) : EMPTY);
    }
    this.fail(new UpstreamFailure("broken", `malformed response: ${this.reason_()}`));
  }

  onDrain(): void {
    this.out.onDrain();
  }

  onClose(): void {
    if (this.closed) return;
    if (this.proof) {
      const step = this.proof.closed();
      this.proof = null;
      if (step.kind === "refused") return this.refuse(step.reason);
    }
    this.closed = true;
    this.out.close();
    this.owner.forget(this);
    queueMicrotask(() => this.free());
    if (this.pipe) return this.pipeClosed?.();
    const sink = this.sink;
    this.sink = null;
    if (!sink) return;
    if (this.head?.untilClose && this.answered) return sink.onResponseEnd(); // its body ran until close: done
    const kind = this.answered ? "broken" : "reset";
    sink.onUpstreamFailure(
      new UpstreamFailure(
        kind,
        kind === "reset"
          ? "the upstream closed the connection before answering"
          : "the upstream broke off its response",
      ),
    );
  }

  override onMessageBegin(): number {
    this.reader.reset();
    this.statusText = "";
    return 0;
  }

  override onStatus(data: Buffer, at: number, length: number): number {
    // "OK" is nearly every reason phrase: spare decoding it
    const ok = length === 2 && data[at] === 79 && data[at + 1] === 75 && this.statusText === "";
    this.statusText += ok ? "OK" : data.toString("latin1", at, at + length);
    return 0;
  }

  onHeaderField(data: Buffer, at: number, length: number): number {
    return this.reader.field(data, at, length) ? 0 : ERROR.USER;
  }

  onHeaderValue(data: Buffer, at: number, length: number): number {
    return this.reader.value(data, at, length) ? 0 : ERROR.USER;
  }

  onHeadersComplete(status: number, _upgrade: boolean, keepAlive: boolean): number {
    if (status < 200 && status !== 101) {
      this.interim = true; // 100, 102, 103: the real answer follows
      return 0;
    }
    if (status === 101 && !this.upgradeAsked) return ERROR.USER;
    const headers = this.reader.finish();
    if (!headers) return ERROR.USER;
    const bodiless = this.skipBody || status === 204 || status === 304 || status === 101;
    this.head = {
      status,
      reason: this.statusText,
      headers,
      length: headers.length,
      bodiless,
      untilClose: !bodiless && headers.length === null && this.needsEof(),
    };
    this.keepAlive = keepAlive;
    if (status !== 101) this.sink!.onResponseHead(this.head);
    return this.skipBody ? SKIP_BODY : 0;
  }

  onBody(data: Buffer, at: number, length: number): number {
    this.sink?.onResponseBody(data, at, length);
    return 0;
  }

  onMessageComplete(): number {
    if (this.interim) {
      this.interim = false;
      return 0;
    }
    if (this.head?.status === 101) return 0; // llhttp stops with PAUSED_UPGRADE
    return ERROR.PAUSED;
  }

  /** The response ended: back to the pool only when nothing followed it and nothing is left unsent. */
  private complete(sink: ResponseSink, clean: boolean): void {
    this.sink = null;
    const head = this.head!;
    this.reused = true;
    // after a HEAD, 204, 304 or an empty body, an upstream that thinks it owes a body may send one late
    const reusable =
      clean && this.keepAlive && this.requestSent && this.out.buffered === 0 && !head.bodiless && head.length !== 0;
    if (reusable) this.owner.release(this);
    else this.destroy();
    sink.onResponseEnd();
  }

  /** A timeout or a protocol error: the exchange fails and the connection is dropped. */
  fail(failure: UpstreamFailure): void {
    const sink = this.sink;
    this.sink = null;
    this.destroy();
    sink?.onUpstreamFailure(failure);
  }

  /** Leaves the exchange without telling it (the caller is gone); the connection cannot be reused. */
  abandon(): void {
    this.sink = null;
    this.destroy();
  }

  destroy(): void {
    this.sink = null;
    if (this.closed) return;
    this.closed = true;
    this.proof?.free();
    this.proof = null;
    this.out.close();
    this.owner.forget(this);
    queueMicrotask(() => this.free());
    this.socket?.terminate();
  }

  private reason_(): string {
    return this.reader.broken ? "response head over the limit" : this.reason();
  }

  /** Whether the current response head is in (a failure after it cannot be retried). */
  get answeredHead(): boolean {
    return this.head !== null;
  }
}
