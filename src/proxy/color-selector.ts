/**
 * Which color answers a frame request. New requests go to the live color; a request that
 * carries an Mcp-Session-Id the upstream issued goes back to the color that issued it, until
 * the session ends (DELETE, or 404 from that color) or `drain_timeout_ms` after a switch away
 * from that color passes: one rule, which `drain` waits for too (it never cuts pins short).
 * It also counts in-flight requests per color, so a drain knows when the old color is idle.
 * Pins and drain times are state the proxy saves (state-file.ts), so they outlive a restart.
 */
import { type Color, otherColor } from "./admin-schema.ts";

/** Bound on remembered sessions; the oldest pin is forgotten first. */
const MAX_PINS = 10_000;

/** What the state file keeps of the selector. */
export interface PinSnapshot {
  sessions: Record<string, Color>;
  /** Epoch ms until which pins to a color that is no longer live are honoured. */
  drain_until: Record<Color, number>;
}

export class ColorSelector {
  readonly inflight: Record<Color, number> = { blue: 0, green: 0 };
  private readonly pins = new Map<string, Color>();
  /** When a color stopped being live, pins to it are honoured until this time (epoch ms). */
  private readonly drainDeadline: Record<Color, number> = { blue: 0, green: 0 };
  private idleWaiters: Array<() => void> = [];
  /** Told whenever pins or drain times change (the proxy saves them). */
  onChange: () => void = () => undefined;

  constructor(
    public live: Color,
    private readonly drainTimeoutMs: number,
    saved?: PinSnapshot,
  ) {
    if (!saved) return;
    this.drainDeadline.blue = saved.drain_until.blue;
    this.drainDeadline.green = saved.drain_until.green;
    for (const [id, color] of Object.entries(saved.sessions)) this.pins.set(id, color);
  }

  get sessions(): number {
    return this.pins.size;
  }

  snapshot(): PinSnapshot {
    return { sessions: Object.fromEntries(this.pins), drain_until: { ...this.drainDeadline } };
  }

  /** The color for a request with this Mcp-Session-Id (or none). */
  pick(sessionId: string | null): Color {
    if (sessionId === null || this.pins.size === 0) return this.live;
    const pinned = this.pins.get(sessionId);
    if (pinned === undefined || pinned === this.live) return this.live;
    if (Date.now() < this.drainDeadline[pinned]) return pinned;
    this.pins.delete(sessionId);
    this.onChange();
    return this.live;
  }

  /** Makes `color` live; pins to the old color keep working for the drain time. */
  switchTo(color: Color): boolean {
    if (color === this.live) return false;
    this.drainDeadline[this.live] = Date.now() + this.drainTimeoutMs;
    this.drainDeadline[color] = 0;
    this.live = color;
    this.onChange();
    return true;
  }

  pin(sessionId: string, color: Color): void {
    if (this.pins.get(sessionId) === color) return;
    this.pins.delete(sessionId);
    if (this.pins.size >= MAX_PINS) this.pins.delete(this.pins.keys().next().value!);
    this.pins.set(sessionId, color);
    this.onChange();
  }

  unpin(sessionId: string): void {
    if (this.pins.delete(sessionId)) this.onChange();
  }

  /** Sessions pinned to `color`. */
  pinnedTo(color: Color): number {
    let n = 0;
    for (const pinned of this.pins.values()) if (pinned === color) n++;
    return n;
  }

  /** Forgets the pins to a passive color whose drain time has passed; returns how many. */
  private expire(color: Color): number {
    if (color === this.live || Date.now() < this.drainDeadline[color]) return 0;
    let released = 0;
    for (const [id, pinned] of this.pins) {
      if (pinned === color) {
        this.pins.delete(id);
        released++;
      }
    }
    if (released > 0) this.onChange();
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

  /**
   * Waits until the passive `color` is drained: nothing in flight, and no session pinned to it
   * (pins end with their session or at the drain time after the switch, when they are released).
   * Resolves with what is left when `timeoutMs` passes first.
   */
  async drain(color: Color, timeoutMs: number): Promise<{ drained: boolean; released: number }> {
    const deadline = Date.now() + timeoutMs;
    let released = 0;
    for (;;) {
      released += this.expire(color);
      if (this.inflight[color] === 0 && this.pinnedTo(color) === 0) return { drained: true, released };
      const now = Date.now();
      if (now >= deadline) return { drained: false, released };
      // wake when a request ends, the pins' drain time comes, or the timeout
      const pinsEnd = this.pinnedTo(color) > 0 ? this.drainDeadline[color] : Number.POSITIVE_INFINITY;
      const wait = Math.max(1, Math.min(deadline, pinsEnd) - now);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The passive color. */
  get passive(): Color {
    return otherColor(this.live);
  }
}
