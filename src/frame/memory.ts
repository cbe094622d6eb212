/**
 * A memory ceiling for a long-running color: JavaScriptCore's heuristics let the old generation
 * grow far past what is live when every request allocates a short-lived MCP server (a blue and a
 * green share one Mac mini). Every 5 s, when RSS is over the soft limit, one full collection runs.
 * It stops the event loop for 25-55 ms even with frame's ~16 MB of live heap, so every request in
 * flight waits that long: every 2 s that was ~0.7% of calls at 32 clients, enough to set p99;
 * every 5 s it stays out of p99 and still holds RSS under 150 MB at 64 clients (decision 35).
 */
export interface MemoryCeilingOptions {
  softLimitBytes?: number;
  intervalMs?: number;
}

/** Starts the check; returns a function that stops it. The timer never keeps the process alive. */
export function startMemoryCeiling(options: MemoryCeilingOptions = {}): () => void {
  const limit = options.softLimitBytes ?? 96 * 1024 * 1024;
  const timer = setInterval(() => {
    if (process.memoryUsage.rss() > limit) Bun.gc(true);
  }, options.intervalMs ?? 5_000);
  timer.unref();
  return () => clearInterval(timer);
}
