/**
 * One JSON line per request on stderr: time, id, method, path, status, color, bytes (of the
 * body the caller got), completed (false when the answer was cut), duration. Lines are batched and written once per tick so logging stays off the hot path.
 */
/** A path JSON needs no escapes for (the common case: skip JSON.stringify). */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * String(n / 100) for a whole n: the duration as the log has always written it (ms, two decimals
 * at most), without the double-to-shortest conversion that cost ~0.1-0.4 us per line. The same
 * text for every n from 0 to 10^15 (test/proxy/units.test.ts); anything else goes the long way.
 */
export function hundredths(n: number): string {
  if (!(n >= 0 && n < 1e15) || n % 1 !== 0) return String(n / 100);
  const whole = Math.floor(n / 100);
  const cents = n - whole * 100;
  if (cents === 0) return `${whole}`;
  if (cents % 10 === 0) return `${whole}.${cents / 10}`;
  return `${whole}.${cents < 10 ? "0" : ""}${cents}`;
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
    const duration = hundredths(Math.round((now - startedAt) * 100));
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
