/**
 * Running until the operator or the service manager says stop (SIGTERM, SIGINT), then stopping
 * while still handling those signals: a second Ctrl-C, or timeout(1) signalling the process and
 * then its group, must not kill us halfway through a stop and orphan what we started.
 *
 * @example
 * await untilStopSignal(() => frame.stop());
 * return 0;
 */

const STOP_SIGNALS = ["SIGTERM", "SIGINT"] as const;

export interface StopSignalOptions {
  /** Called for every stop signal that arrives while stopping (default: a line on stderr). */
  onRepeat?: (signal: NodeJS.Signals) => void;
}

/** Waits for SIGTERM or SIGINT, runs `stop` with the handlers still installed, removes them; returns the signal. */
export async function untilStopSignal(
  stop: (signal: NodeJS.Signals) => Promise<void> | void,
  options: StopSignalOptions = {},
): Promise<NodeJS.Signals> {
  const onRepeat = options.onRepeat ?? (() => process.stderr.write("still stopping\n"));
  let received: NodeJS.Signals | undefined;
  let first!: (signal: NodeJS.Signals) => void;
  const arrived = new Promise<NodeJS.Signals>((resolve) => (first = resolve));
  const handler = (signal: NodeJS.Signals) => {
    if (received) return onRepeat(signal);
    received = signal;
    first(signal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, handler);
  try {
    const signal = await arrived;
    await stop(signal);
    return signal;
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, handler);
  }
}
