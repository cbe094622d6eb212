/**
 * `axe-appliance proxy run`: start the proxy and keep it up until SIGTERM or SIGINT, then
 * stop accepting, let in-flight requests finish, and return 0.
 */
import type { Config } from "../config/load.ts";
import { backupMetrics } from "../status/backup-metrics.ts";
import { ProxyServer } from "./proxy-server.ts";
import { proxySettings } from "./settings.ts";

export async function runProxy(config: Config): Promise<number> {
  const proxy: ProxyServer = new ProxyServer(proxySettings(config), {
    extraMetrics: () => backupMetrics(config.paths.state),
    // loaded on the first page view: its checks weigh ~5 MB of RSS that most proxies never use
    statusPage: async () =>
      (await import("../status/serve.ts")).statusPageHtml(config, {
        status: async () => proxy.status(),
        latency: async () => proxy.latency(),
      }),
  });
  await proxy.start();
  await new Promise<void>((resolve) => {
    const shutdown = () => {
      process.off("SIGTERM", shutdown);
      process.off("SIGINT", shutdown);
      proxy.stop().then(resolve, resolve);
    };
    process.on("SIGTERM", shutdown);
    process.on("SIGINT", shutdown);
  });
  return 0;
}
