/**
 * Which color answers a frame request. New requests go to the live color; a request that
 * carries an Mcp-Session-Id the upstream issued goes back to the color that issued it, until
 * the session ends (DELETE, or 404 from that color) or the drain time after a switch passes.
 * It also counts in-flight requests per color, so a drain knows when the old color is idle.
 */
import { type Color, otherColor } from "./admin-schema.ts";

/** Bound on remembered sessions; the oldest pin is forgotten first. */
const MAX_PINS = 10_000;

export class ColorSelector {
  readonly inflight: Record<Color, number> = { blue: 0, green: 0 };
  private readonly pins = new Map<string, Color>();
  /** When a color stopped being live, pins to it are honoured until this time (ms). */
  private readonly drainDeadline: Record<Color, number> = { blue: 0, green: 0 };
  private idleWaiters: Array<() => void> = [];

  constructor(
    public live: Color,
    private readonly drainTimeoutMs: number,
  ) {}

  get sessions(): number {
    return this.pins.size;
  }

  /** The color for a request with this Mcp-Session-Id (or none). */
  pick(sessionId: string | null): Color {
    if (sessionId === null || this.pins.size === 0) return this.live;
    const pinned = this.pins.get(sessionId);
    if (pinned === undefined || pinned === this.live) return this.live;
    if (Date.now() < this.drainDeadline[pinned]) return pinned;
    this.pins.delete(sessionId);
    return this.live;
  }

  /** Makes `color` live; pins to the old color keep working for the drain time. */
  switchTo(color: Color): boolean {
    if (color === this.live) return false;
    this.drainDeadline[this.live] = Date.now() + this.drainTimeoutMs;
    this.drainDeadline[color] = 0;
    this.live = color;
    return true;
  }

  pin(sessionId: string, color: Color): void {
    if (this.pins.get(sessionId) === color) return;
    this.pins.delete(sessionId);
    if (this.pins.size >= MAX_PINS) this.pins.delete(this.pins.keys().next().value!);
    this.pins.set(sessionId, color);
  }

  unpin(sessionId: string): void {
    this.pins.delete(sessionId);
  }

  /** Forgets every session pinned to `color`; returns how many. */
  releaseSessions(color: Color): number {
    let released = 0;
    for (const [id, pinned] of this.pins) {
      if (pinned === color) {
        this.pins.delete(id);
        released++;
      }
    }
    if (color !== this.live) this.drainDeadline[color] = 0;
    return released;
  }

  started(color: Color): void {
    this.inflight[color]++;
  }

  finished(color: Color): void {
    this.inflight[color]--;
    if (this.inflight[color] === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Resolves true once `color` has no in-flight request, false when `timeoutMs` passes first. */
  async waitIdle(color: Color, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.inflight[color] > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** The passive color. */
  get passive(): Color {
    return otherColor(this.live);
  }
}
