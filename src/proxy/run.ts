/**
 * `axe-appliance proxy run`: start the proxy and keep it up until SIGTERM or SIGINT, then
 * stop accepting, let in-flight requests finish, and return 0. What the proxy shows beyond its
 * own counters (backup ages, the operator's page) is handed in by the caller, so src/proxy
 * imports nothing from the modes above it.
 */
import type { Config } from "../config/load.ts";
import { untilStopSignal } from "../lib/signals.ts";
import { ProxyServer, type ProxyServerOptions } from "./proxy-server.ts";
import { proxySettings } from "./settings.ts";

export async function runProxy(config: Config, options: ProxyServerOptions = {}): Promise<number> {
  const proxy = new ProxyServer(proxySettings(config), options);
  await proxy.start();
  await untilStopSignal(() => proxy.stop());
  return 0;
}
