/**
 * Pause and resume: while paused, new requests wait (each at most `timeoutMs`) for resume;
 * a request that waits too long is answered 503 by the caller.
 */
export class PauseController {
  private waiters = new Set<(released: boolean) => void>();
  private pausedFlag = false;

  constructor(private readonly timeoutMs: number) {}

  get paused(): boolean {
    return this.pausedFlag;
  }

  /** Requests waiting right now. */
  get held(): number {
    return this.waiters.size;
  }

  pause(): void {
    this.pausedFlag = true;
  }

  /** Lets every held request go; returns how many there were. */
  resume(): number {
    this.pausedFlag = false;
    const released = this.waiters.size;
    for (const wake of [...this.waiters]) wake(true);
    return released;
  }

  /** Resolves true when resumed, false when the wait timed out. Check `paused` first: this always waits. */
  wait(): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (released: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(released);
      };
      const timer = setTimeout(() => done(false), this.timeoutMs);
      this.waiters.add(done);
    });
  }
}
