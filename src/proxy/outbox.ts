/**
 * Writes to one socket. Inside a `batch` (one socket event), writes are gathered and go out as one
 * `write` when the event is done, so a small answer is one syscall. They are gathered in one
 * scratch buffer shared by every socket (flushes never overlap), so a head written as a string and
 * a body that is a view into another socket's read buffer cost no allocation; whatever the kernel
 * does not take is copied and sent on drain.
 */
import type { Socket } from "bun";

let batching = 0;
let dirty: Outbox[] = [];
/**
 * `latin1Write` is Buffer's own latin1 writer without the encoding argument to parse: the same
 * bytes as `write(text, at, "latin1")` (test/proxy/units.test.ts) at half the cost per string.
 */
const SCRATCH = Buffer.allocUnsafe(65_536) as Buffer & { latin1Write(text: string, at: number): number };

/** performance.now() as first read in the current socket event (0: not read yet). */
let eventTime = 0;

/** Starts one socket event; every Outbox written to inside it is flushed once by `endBatch`. */
export function beginBatch(): void {
  if (batching++ === 0) eventTime = 0;
}

/**
 * performance.now() for the bookkeeping of one socket event (phase times, deadlines, a pooled
 * connection's last use): read once per event, where a request and its answer took ~6 reads of
 * ~50 ns each. Outside an event, the clock itself.
 */
export function eventNow(): number {
  if (batching === 0) return performance.now();
  return eventTime === 0 ? (eventTime = performance.now()) : eventTime;
}

export function endBatch(): void {
  if (--batching === 0 && dirty.length > 0) {
    const flushing = dirty;
    dirty = [];
    for (const outbox of flushing) outbox.flush();
  }
}

/** Runs `work` as one socket event (for callers off the hot path). */
export function batch(work: () => void): void {
  beginBatch();
  try {
    work();
  } finally {
    endBatch();
  }
}

export class Outbox {
  private socket: Socket<unknown> | null = null;
  /**
   * Written in this batch, not yet sent: strings (latin1), or a range of a buffer that stays valid
   * until the batch ends (a view into a socket's read buffer). Kept in parallel arrays reused
   * from batch to batch, so queueing allocates nothing.
   */
  private readonly pieces: Array<Buffer | string> = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private piecesBytes = 0;
  /** Copies the kernel has not taken yet. */
  private backlog: Buffer[] = [];
  private backlogBytes = 0;
  private ending = false;
  private closed = false;

  /** `drained` runs when everything queued has been taken by the kernel. */
  constructor(private readonly drained: () => void = () => undefined) {}

  /**
   * Bytes the kernel refused so far (waiting for drain). Pieces of the current batch do not count:
   * they may all go out at its end, and then no drain would ever come to undo a pause.
   */
  get buffered(): number {
    return this.backlogBytes;
  }

  /** The socket to write to (a connection still connecting has none yet: writes wait). */
  attach(socket: Socket<unknown>): void {
    this.socket = socket;
    this.onDrain();
  }

  /** Bytes `start` to `end` of `data` (all of it by default). */
  write(data: Buffer, start = 0, end = data.byteLength): void {
    if (this.closed || end <= start) return;
    this.queue(data, start, end);
  }

  /** A head or framing line: every character is one byte (latin1, as llhttp read it). */
  writeText(text: string): void {
    if (this.closed || text.length === 0) return;
    this.queue(text, 0, text.length);
  }

  private queue(piece: Buffer | string, start: number, end: number): void {
    if (this.pieces.length === 0) {
      if (batching === 0)
        return typeof piece === "string"
          ? this.send(Buffer.from(piece, "latin1"), 0, end)
          : this.send(piece, start, end);
      dirty.push(this);
    }
    this.pieces.push(piece);
    this.starts.push(start);
    this.ends.push(end);
    this.piecesBytes += end - start;
  }

  flush(): void {
    const { pieces, starts, ends } = this;
    const count = pieces.length;
    if (count === 0) return;
    const total = this.piecesBytes;
    this.piecesBytes = 0;
    const first = pieces[0]!;
    if (count === 1 && typeof first !== "string") this.send(first, starts[0]!, ends[0]!);
    else if (total > SCRATCH.byteLength) {
      for (let i = 0; i < count; i++) {
        const piece = pieces[i]!;
        if (typeof piece === "string") this.send(Buffer.from(piece, "latin1"), 0, piece.length);
        else this.send(piece, starts[i]!, ends[i]!);
      }
    } else {
      let at = 0;
      for (let i = 0; i < count; i++) {
        const piece = pieces[i]!;
        if (typeof piece === "string") at += SCRATCH.latin1Write(piece, at);
        else at += piece.copy(SCRATCH, at, starts[i], ends[i]); // no view object for the range
      }
      this.send(SCRATCH, 0, at);
    }
    pieces.length = 0;
    starts.length = 0;
    ends.length = 0;
  }

  /**
   * Sends what is queued, then closes the write side only (FIN): the socket stays readable, so a
   * caller still sending does not get a reset that could destroy the answer before it read it.
   */
  end(): void {
    this.flush();
    this.ending = true;
    if (this.backlogBytes === 0 && this.socket) this.socket.shutdown();
  }

  /** The socket is gone: drop everything. */
  close(): void {
    this.closed = true;
    this.pieces.length = 0;
    this.starts.length = 0;
    this.ends.length = 0;
    this.piecesBytes = 0;
    this.backlog = [];
    this.backlogBytes = 0;
  }

  private send(data: Uint8Array, start: number, end: number): void {
    if (this.closed) return;
    if (!this.socket || this.backlogBytes > 0) return this.keep(data, start, end);
    const written = this.socket.write(data, start, end - start);
    if (written < end - start) this.keep(data, start + Math.max(0, written), end);
  }

  private keep(data: Uint8Array, from: number, to: number): void {
    this.backlog.push(Buffer.from(data.subarray(from, to))); // a copy: the view or scratch is reused
    this.backlogBytes += to - from;
  }

  onDrain(): void {
    const socket = this.socket;
    if (!socket || this.closed) return;
    while (this.backlog.length > 0) {
      const head = this.backlog[0]!;
      const written = socket.write(head);
      if (written < 0) return;
      this.backlogBytes -= written;
      if (written < head.byteLength) {
        this.backlog[0] = head.subarray(written);
        return;
      }
      this.backlog.shift();
    }
    if (this.ending) socket.shutdown();
    else this.drained();
  }
}
