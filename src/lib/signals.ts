/**
 * Running until the operator or the service manager says stop (SIGTERM, SIGINT), then stopping
 * while still handling those signals: a second Ctrl-C, or timeout(1) signalling the process and
 * then its group, must not kill us halfway through a stop and orphan what we started.
 *
 * @example
 * await untilStopSignal(() => frame.stop());
 * return 0;
 *
 * @example A command that starts things before it waits (`up`): watch from the first step, so a
 * Ctrl-C while it is still starting stops what it started instead of killing it halfway.
 * const signals = new StopSignals();
 * const app = await startAll({ signal: signals.aborted }); // gives up, and stops, when aborted
 * await signals.until(() => app.stop());
 */

const STOP_SIGNALS = ["SIGTERM", "SIGINT"] as const;

export interface StopSignalOptions {
  /** Called for every stop signal that arrives while stopping (default: a line on stderr). */
  onRepeat?: (signal: NodeJS.Signals) => void;
}

/** SIGTERM and SIGINT handled from construction until `until` (or `dispose`) is done. */
export class StopSignals {
  private readonly controller = new AbortController();
  private received: NodeJS.Signals | undefined;
  private readonly arrived: Promise<NodeJS.Signals>;
  private readonly handler: (signal: NodeJS.Signals) => void;

  constructor(private readonly options: StopSignalOptions = {}) {
    let first!: (signal: NodeJS.Signals) => void;
    this.arrived = new Promise((resolve) => (first = resolve));
    this.handler = (signal) => {
      if (this.received) return (this.options.onRepeat ?? (() => process.stderr.write("still stopping\n")))(signal);
      this.received = signal;
      this.controller.abort(new Error(`stopped by ${signal}`));
      first(signal);
    };
    for (const signal of STOP_SIGNALS) process.on(signal, this.handler);
  }

  /** Aborted at the first stop signal. */
  get aborted(): AbortSignal {
    return this.controller.signal;
  }

  /** Waits for the first stop signal (at once if one came already), runs `stop` with the handlers still installed, removes them. */
  async until(stop: (signal: NodeJS.Signals) => Promise<void> | void): Promise<NodeJS.Signals> {
    try {
      const signal = await this.arrived;
      await stop(signal);
      return signal;
    } finally {
      this.dispose();
    }
  }

  /** Stops handling the signals (their default, ending the process, applies again). */
  dispose(): void {
    for (const signal of STOP_SIGNALS) process.off(signal, this.handler);
  }
}

/** Waits for SIGTERM or SIGINT, runs `stop` with the handlers still installed, removes them; returns the signal. */
export function untilStopSignal(
  stop: (signal: NodeJS.Signals) => Promise<void> | void,
  options: StopSignalOptions = {},
): Promise<NodeJS.Signals> {
  return new StopSignals(options).until(stop);
}
