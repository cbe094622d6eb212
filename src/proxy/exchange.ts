/**
 * One request on its way through: the caller's body streams to an upstream connection (kept in
 * memory too, up to 1 MiB, while it may still have to be sent again), the answer streams back.
 * Bodies are re-framed, never passed on as framed: a chunked body goes on as our own chunks,
 * without extensions or trailers. A failure before any answer byte may send the request again
 * (RetryPlanner decides where); after the answer began, the caller's connection is cut.
 */
import type { Color } from "./admin-schema.ts";
import type { ClientConnection, RequestSink } from "./client-connection.ts";
import type { HeadBytes } from "./forward-headers.ts";
import type { UpstreamLabel } from "./metrics.ts";
import { eventNow } from "./outbox.ts";
import type { UpstreamPool } from "./upstream.ts";
import {
  type ResponseHead,
  type ResponseSink,
  type UpstreamConnection,
  UpstreamFailure,
} from "./upstream-connection.ts";

/** One upstream to try: its pool, its label in logs and metrics, and the color it counts against. */
export interface Attempt {
  pool: UpstreamPool;
  label: UpstreamLabel;
  color: Color | null;
}

/** What the exchange asks of the proxy around it. */
export interface ExchangeHost {
  headerTimeoutMs: number;
  started(color: Color): void;
  finished(color: Color): void;
  /** The response head arrived from `color` (session pins). */
  answered(exchange: Exchange, color: Color, head: ResponseHead): void;
  /** Where to send the request again after `failure`, or null to give up. */
  retry(exchange: Exchange, failure: UpstreamFailure): Attempt | null;
  /** A JSON answer of the proxy's own (502, 504) for a request that reached no upstream. */
  fail(exchange: Exchange, failure: UpstreamFailure): void;
  /** The exchange is over: what the caller got. */
  done(exchange: Exchange, completed: boolean): void;
}

/** Past this much waiting for the other side, the side that sends is paused. */
const HIGH_WATER = 262_144;
/** Bodies up to this size are kept for a second try. */
const MAX_REPLAY = 1_048_576;
const CRLF = "\r\n";
/** No body yet (shared: most requests have none, and never get an array of their own). */
const NONE: Buffer[] = [];
const LAST_CHUNK = "0\r\n\r\n";

export class Exchange implements RequestSink, ResponseSink {
  attempt: Attempt;
  tries = 0;
  /** The caller's body so far, while it may have to be sent again (null once too large). */
  replay: Buffer[] | null = NONE;
  replayBytes = 0;
  requestEnded = false;
  /** The connection the current try went out on had carried an earlier exchange (a stale keep-alive). */
  onReusedConnection = false;
  status = 0;
  bytesSent = 0;
  /** On the frame route (JSON-RPC). */
  frame = false;
  /** The caller's Mcp-Session-Id: such a request never leaves its color. */
  sessionId: string | null = null;
  contentType: string | undefined;
  private upstream: UpstreamConnection | null = null;
  /** When the answer head must have come (the caller's connection checks it on its tick); 0 once it came. */
  deadline = 0;
  private counting: Color | null = null;
  private clientChunked = false;
  private closeAfter = false;
  private finished = false;
  private started = false;
  private fresh = false;

  constructor(
    private readonly host: ExchangeHost,
    readonly client: ClientConnection,
    readonly id: string,
    readonly method: string,
    readonly path: string,
    readonly startedAt: number,
    /** Request line, header lines and framing, as the upstream gets them (latin1 text, or its bytes). */
    private upstreamHead: string | HeadBytes,
    /** The caller's body is chunked: it goes on as our own chunks. */
    private readonly chunked: boolean,
    readonly upgrade: boolean,
    attempt: Attempt,
  ) {
    this.attempt = attempt;
  }

  /** Sends the request (after a pause, the body received so far goes too). */
  start(): void {
    this.started = true;
    this.client.resumeReading();
    this.dispatch();
  }

  private dispatch(): void {
    const { pool, color } = this.attempt;
    if (color) {
      this.host.started(color);
      this.counting = color;
    }
    let connection = this.upgrade || this.fresh ? undefined : pool.reuse();
    this.onReusedConnection = connection !== undefined;
    if (!connection) {
      const opened: UpstreamConnection = pool.open((failure) => {
        if (this.upstream === opened) this.onUpstreamFailure(failure);
      });
      connection = opened;
    }
    this.upstream = connection;
    connection.begin(this, this.method, this.upgrade);
    const head = this.upstreamHead;
    if (typeof head === "string") connection.out.writeText(head);
    else connection.out.write(head.bytes, head.start, head.end);
    if (this.replay) for (const piece of this.replay) this.send(piece);
    if (this.requestEnded) this.sendEnd();
    this.deadline = eventNow() + this.host.headerTimeoutMs;
  }

  body(data: Buffer, at: number, length: number): void {
    if (this.finished) return;
    const piece = data.subarray(at, at + length);
    if (this.replay) {
      if (this.replayBytes + length <= MAX_REPLAY || !this.started) {
        if (this.replay === NONE) this.replay = [];
        this.replay.push(Buffer.from(piece));
        this.replayBytes += length;
      } else this.replay = null;
    }
    if (!this.started) {
      if (this.replayBytes > HIGH_WATER) this.client.pauseReading(); // held by a pause: do not take more
      return;
    }
    if (this.upstream) {
      this.send(piece);
      if (this.upstream.out.buffered > HIGH_WATER) this.client.pauseReading();
    }
  }

  private send(piece: Buffer): void {
    const out = this.upstream!.out;
    if (this.chunked) {
      out.writeText(`${piece.byteLength.toString(16)}\r\n`);
      out.write(piece);
      out.writeText(CRLF);
    } else out.write(piece);
  }

  end(): void {
    this.requestEnded = true;
    if (this.started && this.upstream && !this.finished) this.sendEnd();
  }

  private sendEnd(): void {
    if (this.chunked) this.upstream!.out.writeText(LAST_CHUNK);
    this.upstream!.requestComplete();
  }

  /** Given up before it started (a pause that timed out): nothing to log here, the caller is answered. */
  abandon(): void {
    this.finished = true;
  }

  /** The caller went away (or the proxy refused the rest): the upstream connection cannot be reused mid-exchange. */
  abort(refused = false): void {
    if (this.finished) return;
    this.deadline = 0;
    this.upstream?.abandon();
    this.upstream = null;
    if (!refused) return this.finish(false);
    this.finished = true; // the refusal is what the caller gets, and what is logged
    this.stopCounting();
  }

  onClientDrain(): void {
    if (this.client.out.buffered < HIGH_WATER / 2) this.upstream?.resumeReading();
  }

  onUpstreamDrain(): void {
    if ((this.upstream?.out.buffered ?? 0) < HIGH_WATER / 2) this.client.resumeReading();
  }

  onResponseHead(head: ResponseHead): void {
    this.deadline = 0;
    this.replay = null;
    this.upstreamHead = ""; // it will not be sent again
    this.status = head.status;
    if (this.attempt.color) this.host.answered(this, this.attempt.color, head);
    const client = this.client;
    let framing = "";
    if (head.length !== null && head.status !== 204) framing = `content-length: ${head.length}\r\n`;
    else if (!head.bodiless) {
      if (client.minorOf() === 1) {
        framing = "transfer-encoding: chunked\r\n";
        this.clientChunked = true;
      } else this.closeAfter = true; // an HTTP/1.0 caller reads until we close
    }
    const sse = head.headers.eventStream ? "x-accel-buffering: no\r\n" : "";
    client.responding = true;
    client.writeText(statusLine(head.status, head.reason));
    writeLines(client, head);
    client.writeText(`x-request-id: ${this.id}\r\n${sse}${framing}${client.connectionHeader(!this.closeAfter)}\r\n`);
  }

  onResponseBody(data: Buffer, at: number, length: number): void {
    const client = this.client;
    if (this.clientChunked) {
      client.writeText(`${length.toString(16)}\r\n`);
      client.write(data, at, at + length);
      client.writeText(CRLF);
    } else client.write(data, at, at + length);
    this.bytesSent += length;
    if (client.out.buffered > HIGH_WATER) this.upstream?.pauseReading();
  }

  onResponseEnd(): void {
    this.upstream = null;
    if (this.clientChunked) this.client.writeText(LAST_CHUNK);
    this.finish(true);
    this.client.answerDone(!this.closeAfter);
  }

  onUpgraded(head: ResponseHead, rest: Buffer): void {
    this.deadline = 0;
    this.replay = null;
    this.upstreamHead = "";
    this.status = 101;
    const upstream = this.upstream!;
    const client = this.client;
    client.responding = true;
    client.writeText(`HTTP/1.1 101 ${head.reason}\r\n`);
    writeLines(client, head);
    client.writeText(
      `connection: upgrade\r\nupgrade: ${head.headers.upgrade ?? "websocket"}\r\nx-request-id: ${this.id}\r\n\r\n`,
    );
    // from here on the two sockets are one pipe, until either closes
    upstream.pipe = (data) => {
      this.bytesSent += data.byteLength;
      client.write(data);
      if (client.out.buffered > HIGH_WATER) upstream.pauseReading();
    };
    upstream.pipeClosed = () => {
      this.upstream = null;
      this.finish(true);
      client.answerDone(false);
    };
    if (rest.byteLength > 0) upstream.pipe(rest);
    client.pipeTo({
      body: () => undefined,
      end: () => undefined,
      abort: () => this.abort(),
      onClientDrain: () => {
        if (client.out.buffered < HIGH_WATER / 2) upstream.resumeReading();
      },
      piped: (data) => {
        upstream.out.write(data);
        if (upstream.out.buffered > HIGH_WATER) client.pauseReading();
      },
    });
  }

  onUpstreamFailure(failure: UpstreamFailure): void {
    if (this.finished) return;
    this.deadline = 0;
    this.upstream = null;
    this.stopCounting();
    if (this.client.responding) {
      // the answer began: all we can do is cut the caller's connection
      this.finish(false);
      this.client.close();
      return;
    }
    const next = this.host.retry(this, failure);
    if (next) {
      this.tries++;
      this.fresh = failure.kind === "reset" && this.onReusedConnection;
      this.attempt = next;
      return this.dispatch();
    }
    this.finished = true;
    this.host.fail(this, failure);
  }

  timedOut(): void {
    this.deadline = 0;
    this.upstream?.fail(new UpstreamFailure("timeout", `no response headers within ${this.host.headerTimeoutMs} ms`));
  }

  private stopCounting(): void {
    if (this.counting) this.host.finished(this.counting);
    this.counting = null;
  }

  private finish(completed: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.stopCounting();
    this.host.done(this, completed);
  }
}

/** Per status, the status line with the reason phrase it last came with (made once, not per answer). */
const statusLines = new Map<number, { reason: string; line: string }>();

let last = { status: 0, reason: "", line: "" };

/** "HTTP/1.1 <status> <reason>\r\n", as the upstream's status line said it. */
function statusLine(status: number, reason: string): string {
  if (status === last.status && reason === last.reason) return last.line;
  const known = statusLines.get(status);
  if (known !== undefined && known.reason === reason) {
    last = { status, reason, line: known.line };
    return known.line;
  }
  const line = `HTTP/1.1 ${status} ${reason}\r\n`;
  statusLines.set(status, { reason, line });
  last = { status, reason, line };
  return line;
}

/** The upstream's header lines the caller gets: its own bytes when they came in one read, else as decoded. */
function writeLines(client: ClientConnection, head: ResponseHead): void {
  const { raw, rawSource } = head.headers;
  if (raw && rawSource) for (let i = 0; i < raw.length; i += 2) client.write(rawSource, raw[i], raw[i + 1]);
  else client.writeText(head.headers.lines);
}
