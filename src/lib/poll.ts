/**
 * Asking again until an answer comes or time is up: a color's /healthz, the proxy's view of a
 * color, a process that should have exited. Tries at least once, and never sleeps past the deadline.
 *
 * @example
 * const healthy = await pollUntil(async () => ((await probe()).ok ? true : undefined), { timeoutMs: 90_000, intervalMs: 200 });
 * if (!healthy) throw new DeployError("HEALTH_TIMEOUT", "...");
 */

export interface PollOptions {
  /** How long to keep asking, from the first attempt. */
  timeoutMs: number;
  /** Pause between attempts. */
  intervalMs: number;
}

/**
 * Calls `attempt` until it returns something other than undefined, and returns that; undefined
 * when the time is up. An attempt that throws ends the polling with its error (e.g. "the service died").
 */
export async function pollUntil<T>(
  attempt: () => T | undefined | Promise<T | undefined>,
  options: PollOptions,
): Promise<T | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const answer = await attempt();
    if (answer !== undefined) return answer;
    const left = deadline - Date.now();
    if (left <= 0) return undefined;
    await Bun.sleep(Math.min(options.intervalMs, left));
  }
}
