/**
 * One JSON line per request on stderr: time, id, method, path, status, color, bytes (of the
 * body the caller got), completed (false when the answer was cut), duration. Lines are batched and written once per tick so logging stays off the hot path.
 */
/** A path JSON needs no escapes for (the common case: skip JSON.stringify). */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

export class AccessLog {
  private pending: string[] = [];
  private scheduled = false;
  private lastMs = 0;
  private lastIso = "";

  constructor(
    private readonly enabled: boolean,
    private readonly write: (chunk: string) => void = (chunk) => process.stderr.write(chunk),
  ) {}

  /**
   * `upstream` is blue, green, fixed, or proxy when we answered ourselves. The line is written by
   * hand: id (a checked request id), method (a token) and upstream never need escaping; path does.
   */
  record(
    id: string,
    method: string,
    path: string,
    status: number,
    upstream: string,
    bytes: number,
    startedAt: number,
    completed = true,
    now = performance.now(),
  ): void {
    if (!this.enabled) return;
    const duration = Math.round((now - startedAt) * 100) / 100;
    this.pending.push(
      `{"time":"${this.time()}","level":"info","msg":"request","id":"${id}","method":"${method}","path":${PLAIN.test(path) ? `"${path}"` : JSON.stringify(path)},"status":${status},"color":"${upstream}","bytes":${bytes},"completed":${completed},"duration_ms":${duration}}`,
    );
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => this.flush(), 0);
    }
  }

  /** The ISO time, formatted once per millisecond at most. */
  private time(): string {
    const ms = Date.now();
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastIso = new Date(ms).toISOString();
    }
    return this.lastIso;
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const lines = `${this.pending.join("\n")}\n`;
    this.pending = [];
    this.write(lines);
  }
}
