/**
 * One JSON line per request on stderr: time, id, method, path, status, color, bytes,
 * duration. Lines are batched and written once per tick so logging stays off the hot path.
 */
export interface AccessEntry {
  id: string;
  method: string;
  path: string;
  status: number;
  /** blue, green, the fixed upstream's origin, or "proxy" when we answered ourselves. */
  upstream: string;
  bytes: number;
  startedAt: number;
}

export class AccessLog {
  private pending: string[] = [];
  private scheduled = false;
  private lastMs = 0;
  private lastIso = "";

  constructor(
    private readonly enabled: boolean,
    private readonly write: (chunk: string) => void = (chunk) => process.stderr.write(chunk),
  ) {}

  record(entry: AccessEntry): void {
    if (!this.enabled) return;
    const now = performance.now();
    this.pending.push(
      JSON.stringify({
        time: this.time(),
        level: "info",
        msg: "request",
        id: entry.id,
        method: entry.method,
        path: entry.path,
        status: entry.status,
        color: entry.upstream,
        bytes: entry.bytes,
        duration_ms: Math.round((now - entry.startedAt) * 100) / 100,
      }),
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
    const lines = this.pending.join("\n") + "\n";
    this.pending = [];
    this.write(lines);
  }
}
