/**
 * Keeps a set of processes alive for `up`: checks each on an interval, starts what is down, and
 * backs off (1 s, 2 s, 4 s ... 30 s) when something keeps dying; a process that stayed up for a
 * minute starts again from the shortest delay. A process being restarted on purpose (a deploy)
 * is left alone.
 */
import type { Logger } from "../lib/log.ts";

export interface Supervised {
  name: string;
  running(): Promise<boolean>;
  start(): Promise<void>;
  /** True while someone else restarts it on purpose. */
  paused?(): boolean;
  /** What it said last on its way out (its last error line), for the line that reports it down. */
  lastWords?(): string | undefined;
}

export interface SupervisorOptions {
  intervalMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Up this long and the backoff resets. */
  stableMs?: number;
  log: Logger;
}

interface Track {
  failures: number;
  nextStartAt: number;
  upSince?: number;
  restarts: number;
  /** The last reason its check failed, so a check that keeps failing the same way is logged once. */
  checkError?: string;
}

export class Supervisor {
  private readonly tracks = new Map<string, Track>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private ticking: Promise<void> = Promise.resolve();

  constructor(
    private readonly processes: Supervised[],
    private readonly options: SupervisorOptions,
  ) {
    for (const p of processes) this.tracks.set(p.name, { failures: 0, nextStartAt: 0, restarts: 0 });
  }

  /** Restarts so far, per process (a start after the first). */
  restarts(name: string): number {
    return this.tracks.get(name)?.restarts ?? 0;
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.ticking = this.tick().finally(() => {
        if (!this.stopped) this.timer = setTimeout(loop, this.options.intervalMs ?? 500);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
  }

  /** A check that fails (e.g. a refused PID file) counts as down, and says why. */
  private running(p: Supervised, track: Track): Promise<boolean> {
    return p.running().then(
      (running) => {
        track.checkError = undefined;
        return running;
      },
      (error: Error) => {
        if (track.checkError !== error.message)
          this.options.log.error("cannot tell whether the process runs; taking it as down", { process: p.name, error });
        track.checkError = error.message;
        return false;
      },
    );
  }

  async tick(): Promise<void> {
    for (const p of this.processes) {
      if (this.stopped) return;
      const track = this.tracks.get(p.name)!;
      if (p.paused?.()) continue;
      const now = Date.now();
      if (await this.running(p, track)) {
        track.upSince ??= now;
        if (now - track.upSince >= (this.options.stableMs ?? 60_000)) track.failures = 0;
        continue;
      }
      if (now < track.nextStartAt) continue;
      const first = track.upSince === undefined && track.restarts === 0 && track.failures === 0;
      if (!first) {
        track.restarts++;
        const reason = p.lastWords?.();
        this.options.log.warn("process is down; starting it again", {
          process: p.name,
          attempt: track.failures + 1,
          ...(reason ? { reason } : {}),
        });
      }
      track.upSince = undefined;
      const delay = Math.min(
        (this.options.minBackoffMs ?? 1000) * 2 ** track.failures,
        this.options.maxBackoffMs ?? 30_000,
      );
      track.failures++;
      track.nextStartAt = now + delay;
      await p
        .start()
        .catch((error: Error) => this.options.log.error("could not start process", { process: p.name, error }));
    }
  }
}
