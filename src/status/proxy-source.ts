/**
 * Where the status report reads the proxy from: its admin socket (the `status` command) or the
 * running ProxyServer itself (the page the proxy serves on GET /page).
 */
import { type ProxyStatus, proxyStatus } from "../proxy/admin-client.ts";
import { type LatencySeries, LatencySeriesSchema } from "../proxy/latency-history.ts";

export interface ProxySource {
  status(): Promise<ProxyStatus>;
  latency(): Promise<LatencySeries>;
}

/** Reads a running proxy over its admin socket; failures reject with a ProxyError or Error. */
export function socketProxySource(socketPath: string): ProxySource {
  return {
    status: () => proxyStatus(socketPath),
    async latency() {
      const response = await fetch("http://axe-proxy/latency", {
        unix: socketPath,
        signal: AbortSignal.timeout(5_000),
      });
      if (!response.ok) throw new Error(`the proxy answered GET /latency with HTTP ${response.status}`);
      return LatencySeriesSchema.parse(await response.json());
    },
  };
}
