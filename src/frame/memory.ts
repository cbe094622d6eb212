/**
 * A memory ceiling for a long-running color: JavaScriptCore's heuristics let the old generation
 * grow far past what is live when every request allocates a short-lived MCP server (a blue and a
 * green share one Mac mini). Every few seconds, when RSS is over the soft limit, one full
 * collection runs (a few milliseconds with frame's ~16 MB of live heap).
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
  }, options.intervalMs ?? 2_000);
  timer.unref();
  return () => clearInterval(timer);
}
