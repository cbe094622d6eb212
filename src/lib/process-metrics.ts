/**
 * The metrics every axe-appliance process exposes besides its own: `axe_build_info` (release,
 * commit, target; always 1) and prom-client's `process_*` / `nodejs_*` (decision 54). frame
 * registers them on its registry; the proxy loads prom-client only when it is first scraped (its
 * RSS is held low, decision 41) and appends them to its own counters.
 *
 * @example
 * registerProcessMetrics(registry);                  // frame: on its own registry
 * const text = await processMetricsText({ color });  // proxy: a registry of their own, once
 */
import type { Registry } from "prom-client";
import { buildInfo, releaseVersion } from "./version.ts";

export async function registerProcessMetrics(registry: Registry): Promise<void> {
  const { Gauge, collectDefaultMetrics } = await import("prom-client");
  const build = buildInfo();
  new Gauge({
    name: "axe_build_info",
    help: "The release, commit and target this process runs (always 1).",
    labelNames: ["release", "commit", "target"],
    registers: [registry],
  }).set({ release: releaseVersion(), commit: build.commit, target: build.target }, 1);
  collectDefaultMetrics({ register: registry });
}

let own: Promise<Registry> | undefined;

/** The build-info gauge and the process metrics in the text format, from a registry made on first use. */
export async function processMetricsText(labels: Record<string, string> = {}): Promise<string> {
  own ??= (async () => {
    const { Registry } = await import("prom-client");
    const registry = new Registry();
    registry.setDefaultLabels(labels);
    await registerProcessMetrics(registry);
    return registry;
  })();
  return (await own).metrics();
}
