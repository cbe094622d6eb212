/**
 * One caller's connection: its bytes framed by llhttp (strict), held to the head limits and to a
 * minimum rate (slowloris), and answered in order. A request's head goes to the RequestHandler as
 * soon as it is complete and its body streams on; the next pipelined request is parsed only when
 * the answer to this one is done. Defends against smuggling (llhttp refuses ambiguous framing,
 * and after any refusal the connection closes) and slow clients (deadlines checked by `tick`).
 */
import type { Socket } from "bun";
import { READ_REQUEST_HEADERS } from "./forward-headers.ts";
import { decodeLike, HeadCollector, type HeadLimits, headerMap } from "./head-collector.ts";
import { ERROR, HttpParser, REQUEST } from "./llhttp.ts";
import { beginBatch, endBatch, eventNow, Outbox } from "./outbox.ts";
import type { Refusal } from "./request-guard.ts";

export interface RequestHead {
  method: string;
  /** The raw request target. */
  url: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  names: string[];
  /** The names in lower case. */
  lower: string[];
  /**
   * The values; while `begin` runs, only those of READ_REQUEST_HEADERS for sure (the others are ""
   * until ClientConnection.headValues decodes them), and after it only those.
   */
  values: string[];
  /** Lower-case names to values. */
  map: Record<string, string>;
  /** The caller may send another request after this one. */
  keepAlive: boolean;
  /** Connection: upgrade with an Upgrade header. */
  upgrade: boolean;
  /** performance.now() at the first byte. */
  startedAt: number;
  /**
   * The read that holds every header line as `${name}: ${value}\r\n` (HeadCollector), and each
   * line's [start, end) in it; valid only while `RequestHandler.begin` runs (null after, or when
   * the lines are not all there as they would be written).
   */
  source: Buffer | null;
  lines: readonly number[];
}

/** Where a request's body goes: the exchange that forwards it. */
export interface RequestSink {
  body(data: Buffer, at: number, length: number): void;
  end(): void;
  /** The caller went away, or the request broke off: give up on it. `refused`: the proxy answers it (and logs that). */
  abort(refused?: boolean): void;
  /** The caller took what was queued for it (response back-pressure). */
  onClientDrain(): void;
  /** Bytes the caller sent after an upgrade (WebSocket frames), once piped. */
  piped?(data: Buffer): void;
  /** performance.now() by which the upstream's answer head must have come (0: none pending); `tick` checks it. */
  deadline?: number;
  timedOut?(): void;
}

export interface RequestHandler {
  /** A head is complete. Returns its body's sink, or null when the proxy answered it itself. */
  begin(connection: ClientConnection, head: RequestHead): RequestSink | null;
  /** A request refused by the connection itself (malformed, limits, too slow); it answers and closes. */
  refuse(connection: ClientConnection, refusal: ClientRefusal, head: RequestHead | null): void;
}

export type ClientRefusal = Omit<Refusal, "status"> & { status: Refusal["status"] | 408 };

export interface ClientLimits extends HeadLimits {
  maxBodyBytes: number;
  /** A request head must be complete this long after its first byte. */
  headTimeoutMs: number;
  /** After the head timeout, a body must have come at least this fast on average. */
  minBodyBytesPerS: number;
  idleTimeoutMs: number;
}

type Phase = "idle" | "head" | "body" | "waiting" | "piped" | "closed";
/** Unparsed pipelined bytes held while an answer is pending; past this the socket stops reading. */
const MAX_HELD = 65_536;
/** After our last answer, how long we keep reading (and dropping) what the caller still sends, so its reset cannot eat the answer. */
const LINGER_MS = 2_000;

export class ClientConnection extends HttpParser {
  readonly out: Outbox;
  readonly peer: string;
  phase: Phase = "idle";
  /** When the phase began (performance.now()). */
  private since: number;
  private lastDrain: number;
  private head: RequestHead | null = null;
  private collector: HeadCollector | null = null;
  private url = "";
  /** The last complete request's target. */
  private lastUrl = "";
  private sink: RequestSink | null = null;
  private bodyBytes = 0;
  /** The answer to the current request has gone out whole. */
  private answered = false;
  private closeAfterAnswer = false;
  private held: Buffer | null = null;
  private feeding = false;
  private readingPaused = false;
  private pausedWith = 0;
  private lingering = false;

  constructor(
    readonly socket: Socket<ClientConnection>,
    private readonly handler: RequestHandler,
    private readonly limits: ClientLimits,
    /** Came through the tunnel's Unix socket: its X-Forwarded-* and X-Request-Id are believed. */
    readonly tunnel = false,
  ) {
    super(REQUEST);
    if (!tunnel) socket.setNoDelay(true); // an answer's last piece must not wait for the caller's ACK
    this.peer = tunnel ? "unix" : socket.remoteAddress;
    this.since = this.lastDrain = performance.now();
    this.out = new Outbox(() => {
      this.lastDrain = eventNow();
      this.sink?.onClientDrain();
    });
    this.out.attach(socket as Socket<unknown>);
  }

  /** A request or response is in progress (a stopping proxy waits for these). */
  get busy(): boolean {
    return this.phase === "head" || this.phase === "body" || this.phase === "waiting" || this.phase === "piped";
  }

  onData(data: Buffer): void {
    if (this.phase === "closed") return;
    if (this.phase === "piped") return this.sink?.piped?.(data);
    if (this.held || (this.phase === "waiting" && !this.answered)) return this.hold(data);
    this.feed(data);
  }

  private hold(data: Buffer): void {
    this.held = this.held ? Buffer.concat([this.held, data]) : Buffer.from(data);
    if (this.held.byteLength > MAX_HELD) this.pauseReading();
  }

  private feed(data: Buffer): void {
    this.feeding = true;
    let rest = data;
    try {
      for (;;) {
        const errno = this.execute(rest);
        if (this.phase === "closed") return;
        if (errno === ERROR.OK) {
          if (this.phase === "head") this.collector?.detach(); // the read goes back to Bun
          return;
        }
        if (errno !== ERROR.PAUSED && errno !== ERROR.PAUSED_UPGRADE) return this.malformed();
        // a request is complete: the next one waits until this one is answered
        this.pausedWith = errno;
        const consumed = this.consumed();
        const more = consumed < rest.byteLength; // pipelined bytes follow (a view is made only then)
        if (!this.answered || this.phase === "piped") {
          if (more) this.hold(rest.subarray(consumed));
          return;
        }
        this.unpause();
        if (!more) return;
        rest = rest.subarray(consumed);
      }
    } finally {
      this.feeding = false;
    }
  }

  /** An upgrade the proxy did not pipe goes on as HTTP. */
  private unpause(): void {
    if (this.pausedWith === ERROR.PAUSED) this.resume();
    else if (this.pausedWith === ERROR.PAUSED_UPGRADE) this.resumeAfterUpgrade();
    this.pausedWith = 0;
  }

  private malformed(): void {
    const broken = this.collector?.broken;
    if (broken === "line" && this.head === null && this.collector?.names.length === 0)
      return this.refuse({ status: 414, error: "target_too_long", message: "the request line is too long" });
    if (broken)
      return this.refuse({
        status: 431,
        error: "headers_too_large",
        message: `request head over the limit (${broken === "count" ? "too many headers" : broken === "line" ? "a header line is too long" : `more than ${this.limits.maxHeadBytes} bytes`})`,
      });
    if (this.bodyBytes > this.limits.maxBodyBytes) return; // refused in onBody already
    this.refuse({ status: 400, error: "bad_request", message: `malformed request: ${this.reason()}` });
  }

  /** Answers a refusal (through the handler, which logs it) and closes after it. */
  refuse(refusal: ClientRefusal): void {
    if (this.phase === "closed") return;
    const sink = this.sink;
    this.sink = null;
    this.closeAfterAnswer = true;
    if (this.responding) {
      sink?.abort(); // an answer is half sent: all we can do is cut it
      return this.close();
    }
    sink?.abort(true);
    this.handler.refuse(this, refusal, this.head ?? this.partialHead());
  }

  /** What was read of a head that never completed, for the log line of its refusal. */
  private partialHead(): RequestHead | null {
    const collector = this.collector;
    if (!collector || this.url === "") return null;
    return {
      method: this.method(),
      url: this.url,
      minor: 1,
      names: collector.names,
      lower: collector.lower,
      values: collector.values,
      map: headerMap(collector.lower, collector.values),
      keepAlive: false,
      upgrade: false,
      startedAt: this.since,
      source: null,
      lines: collector.lines,
    };
  }

  override onMessageBegin(): number {
    this.phase = "head";
    this.since = eventNow();
    if (this.collector)
      this.collector.reset(); // the last head's arrays are no longer read
    else this.collector = new HeadCollector(this.limits, READ_REQUEST_HEADERS);
    this.url = "";
    this.head = null;
    this.bodyBytes = 0;
    this.answered = false;
    this.responding = false;
    return 0;
  }

  override onUrl(data: Buffer, at: number, length: number): number {
    // a keep-alive caller mostly asks for the same target again: compared before it is decoded
    this.url =
      this.url === ""
        ? decodeLike(this.lastUrl, data, at, length)
        : this.url + data.toString("latin1", at, at + length);
    return this.collector!.count(length, this.url.length + 16) ? 0 : ERROR.USER;
  }

  onHeaderField(data: Buffer, at: number, length: number): number {
    return this.collector!.field(data, at, length) ? 0 : ERROR.USER;
  }

  onHeaderValue(data: Buffer, at: number, length: number): number {
    return this.collector!.fieldValue(data, at, length) ? 0 : ERROR.USER;
  }

  onHeadersComplete(_status: number, upgrade: boolean, keepAlive: boolean): number {
    const collector = this.collector!;
    if (!collector.end()) return ERROR.USER;
    const minor = this.minorVersion();
    this.lastUrl = this.url;
    const head: RequestHead = {
      method: this.method(),
      url: this.url,
      minor,
      names: collector.names,
      lower: collector.lower,
      values: collector.values,
      map: headerMap(collector.lower, collector.values),
      keepAlive,
      upgrade,
      startedAt: this.since,
      source: collector.source,
      lines: collector.lines,
    };
    this.head = head;
    this.phase = "body";
    this.since = eventNow();
    if (minor !== 0 && minor !== 1) {
      this.refuse({ status: 505, error: "bad_version", message: "only HTTP/1.0 and HTTP/1.1 are spoken here" });
      return ERROR.USER;
    }
    if (!keepAlive) this.closeAfterAnswer = true;
    this.sink = this.handler.begin(this, head);
    head.source = collector.source = null; // the read goes back to Bun: nothing may keep reading it
    return (this.phase as Phase) === "closed" ? ERROR.USER : 0;
  }

  onBody(data: Buffer, at: number, length: number): number {
    this.bodyBytes += length;
    if (this.bodyBytes > this.limits.maxBodyBytes) {
      this.refuse({
        status: 413,
        error: "body_too_large",
        message: `request body exceeds ${this.limits.maxBodyBytes} bytes`,
      });
      return ERROR.USER;
    }
    this.sink?.body(data, at, length);
    return 0;
  }

  onMessageComplete(): number {
    this.phase = this.answered ? "idle" : "waiting";
    this.since = eventNow();
    this.sink?.end();
    return this.head?.upgrade ? 0 : ERROR.PAUSED; // after an upgrade llhttp stops by itself (PAUSED_UPGRADE)
  }

  /** The response head has gone out (a failure after it can only cut the connection). */
  responding = false;

  /**
   * The current head's values, every one decoded: while `begin` runs, values the proxy does not
   * read are "" until this is called (only the head's strings need them; its bytes do not).
   */
  headValues(): string[] {
    return this.collector!.decodeAll();
  }

  /** The current request's HTTP minor version (0 or 1). */
  minorOf(): number {
    return this.head?.minor ?? 1;
  }

  /** Bytes `start` to `end` of `data` (views of a read are fine within its batch). */
  write(data: Buffer, start?: number, end?: number): void {
    this.out.write(data, start, end);
  }

  /** A head or framing line (latin1). */
  writeText(text: string): void {
    this.out.writeText(text);
  }

  /** Switches the connection to a byte pipe (after a 101); held bytes go to the sink first. */
  pipeTo(sink: RequestSink): void {
    this.phase = "piped";
    this.sink = sink;
    const held = this.held;
    this.held = null;
    if (held) sink.piped?.(held);
    this.resumeReading();
  }

  /** The answer to the current request is complete. `reusable` false: close after it. */
  answerDone(reusable: boolean): void {
    if (this.phase === "closed") return;
    this.answered = true;
    this.responding = false;
    this.sink = null;
    if (!reusable || this.closeAfterAnswer) return this.finishAndLinger();
    // a body still coming is read and dropped (sink gone); the next request follows it
    if (this.phase !== "waiting") return;
    this.phase = "idle";
    this.since = eventNow();
    if (this.feeding) return; // feed() goes on with the next pipelined request
    this.unpause();
    const held = this.held;
    this.held = null;
    this.resumeReading();
    if (held) {
      beginBatch();
      try {
        this.feed(held);
      } finally {
        endBatch();
      }
    }
  }

  /** The Connection header an answer needs: close when this is the last, keep-alive for an HTTP/1.0 caller that asked. */
  connectionHeader(reusable: boolean): string {
    if (!reusable || this.closeAfterAnswer) return "connection: close\r\n";
    return this.head?.minor === 0 ? "connection: keep-alive\r\n" : "";
  }

  /** Stop after the current answer (the proxy is stopping); an idle connection closes now. */
  closeWhenIdle(): void {
    this.closeAfterAnswer = true;
    if (this.phase === "idle" && !this.held) this.finishAndLinger();
  }

  /** Our side is done: FIN after the last answer, then reading (and dropping) until the caller closes or LINGER_MS pass. */
  private finishAndLinger(): void {
    this.phase = "closed";
    this.since = eventNow();
    this.lingering = true;
    this.out.end();
  }

  pauseReading(): void {
    if (this.readingPaused) return;
    this.readingPaused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    this.socket.resume();
  }

  onDrain(): void {
    this.lastDrain = eventNow(); // the caller is reading, however slowly
    this.out.onDrain();
  }

  /** Deadlines: idle keep-alive, a head that comes too slowly, a body under the minimum rate, a caller that stopped reading. */
  tick(now: number): void {
    const { limits } = this;
    const sink = this.sink;
    if (sink?.deadline && now > sink.deadline) sink.timedOut?.();
    const age = now - this.since;
    if (this.lingering) {
      if (age > LINGER_MS) this.close();
      return;
    }
    if (this.phase === "idle" && !this.held && age > limits.idleTimeoutMs) return this.finishAndLinger();
    if (this.phase === "head" && age > limits.headTimeoutMs)
      return this.refuse({
        status: 408,
        error: "request_timeout",
        message: `the request head did not arrive within ${limits.headTimeoutMs} ms`,
      });
    if (
      this.phase === "body" &&
      !this.responding &&
      age > limits.headTimeoutMs &&
      (this.bodyBytes * 1000) / age < limits.minBodyBytesPerS
    )
      return this.refuse({
        status: 408,
        error: "request_timeout",
        message: `the request body came slower than ${limits.minBodyBytesPerS} bytes/s`,
      });
    if (this.out.buffered > 0 && now - this.lastDrain > limits.idleTimeoutMs) this.close(); // stopped reading
  }

  /** Closes the connection at once, dropping anything unsent. */
  close(): void {
    this.phase = "closed";
    this.lingering = false;
    this.out.close();
    this.socket.terminate();
  }

  onClose(): void {
    const sink = this.sink;
    this.sink = null;
    this.phase = "closed";
    this.out.close();
    this.held = null;
    sink?.abort();
    queueMicrotask(() => this.free());
  }
}
