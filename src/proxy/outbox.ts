/**
 * Writes to one socket. Inside a `batch` (one socket event), writes are gathered and go out as one
 * `write` when the event is done, so a small answer is one syscall; whatever the kernel does not
 * take is copied (the pieces may be views into another socket's read buffer) and sent on drain.
 */
import type { Socket } from "bun";

let batching = 0;
let dirty: Outbox[] = [];

/** Runs `work` as one socket event: every Outbox written to inside it is flushed once at the end. */
export function batch(work: () => void): void {
  batching++;
  try {
    work();
  } finally {
    if (--batching === 0 && dirty.length > 0) {
      const flushing = dirty;
      dirty = [];
      for (const outbox of flushing) outbox.flush();
    }
  }
}

export class Outbox {
  private socket: Socket<unknown> | null = null;
  /** Written in this batch, not yet sent (views, valid until the batch ends). */
  private pieces: Uint8Array[] = [];
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

  write(data: Uint8Array): void {
    if (this.closed || data.byteLength === 0) return;
    if (batching === 0) return this.send(data);
    if (this.pieces.length === 0) dirty.push(this);
    this.pieces.push(data);
    this.piecesBytes += data.byteLength;
  }

  flush(): void {
    if (this.pieces.length === 0) return;
    const data = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.piecesBytes);
    this.pieces = [];
    this.piecesBytes = 0;
    this.send(data);
  }

  /** Sends what is queued, then closes the write side (FIN). */
  end(): void {
    this.flush();
    this.ending = true;
    if (this.backlogBytes === 0 && this.socket) this.socket.end();
  }

  /** The socket is gone: drop everything. */
  close(): void {
    this.closed = true;
    this.pieces = [];
    this.piecesBytes = 0;
    this.backlog = [];
    this.backlogBytes = 0;
  }

  private send(data: Uint8Array): void {
    if (this.closed) return;
    if (!this.socket || this.backlogBytes > 0) return this.keep(data);
    const written = this.socket.write(data);
    if (written < data.byteLength) this.keep(data.subarray(Math.max(0, written)));
  }

  private keep(data: Uint8Array): void {
    this.backlog.push(Buffer.from(data)); // a copy: the view may be reused by its socket
    this.backlogBytes += data.byteLength;
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
    if (this.ending) socket.end();
    else this.drained();
  }
}
