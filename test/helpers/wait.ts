/**
 * Waiting in tests: on a condition, never on the clock. A test that expects something to happen
 * (a row written, a process up, a notification heard) asks until it has happened, with a bound
 * generous enough for a loaded 2-core machine; the bound only matters when the test fails.
 * Built on the appliance's own poll primitive (src/lib/poll.ts).
 *
 * @example
 * await waitFor("the audit row", async () => ((await count()) >= 1 ? true : undefined));
 */
import { pollUntil } from "../../src/lib/poll.ts";

/** Generous on purpose: under load a healthy step can take many times what it takes alone. */
export const WAIT_MS = 30_000;

/** Resolves with the probe's first answer other than undefined (or false); throws naming `what` at the bound. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: {
    timeoutMs?: number;
    intervalMs?: number /** A probe that throws is "not yet" (a server still starting). */;
    retryErrors?: boolean;
  } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? WAIT_MS;
  const answer = await pollUntil(
    async () => {
      const value = options.retryErrors
        ? await Promise.resolve()
            .then(probe)
            .catch(() => undefined)
        : await probe();
      return value === false ? undefined : value;
    },
    { timeoutMs, intervalMs: options.intervalMs ?? 25 },
  );
  if (answer === undefined) throw new Error(`gave up waiting for ${what} after ${timeoutMs / 1000} s`);
  return answer;
}
