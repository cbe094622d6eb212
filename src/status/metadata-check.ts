/**
 * The public URL's OAuth metadata without the tunnel or a certificate: GET the protected
 * resource metadata from the local proxy with the public Host, and check that it names the MCP
 * URL and the customer's Entra tenant. This is what claude.ai reads first.
 */

import type { Config } from "../config/load.ts";
import { urlHost } from "../lib/address.ts";
import { networkFailure } from "../lib/network-error.ts";
import { proxySettings } from "../proxy/settings.ts";
import type { Check, StatusReport } from "./report.ts";

export async function checkMetadata(config: Config): Promise<{ metadata: StatusReport["metadata"]; check: Check }> {
  const { hostname, port } = proxySettings(config);
  const publicUrl = new URL(config.mcpUrl);
  const path = `/.well-known/oauth-protected-resource${publicUrl.pathname}`;
  const local = `http://${urlHost(hostname)}:${port}${path}`;
  const url = `${publicUrl.origin}${path}`;
  const result = (ok: boolean, detail: string) => ({
    metadata: { url, ok, detail },
    check: { name: "metadata", level: ok ? "ok" : "fail", summary: `${url}: ${detail}` } as Check,
  });
  let body: { resource?: unknown; authorization_servers?: unknown };
  try {
    const response = await fetch(local, {
      headers: { host: publicUrl.host, "x-forwarded-proto": publicUrl.protocol.replace(":", "") },
      signal: AbortSignal.timeout(5_000),
    });
    if (!response.ok) return result(false, `HTTP ${response.status} through the local proxy`);
    body = (await response.json()) as typeof body;
  } catch (error) {
    return result(false, `no answer through the local proxy: ${networkFailure(error)}`);
  }
  if (body.resource !== config.mcpUrl)
    return result(false, `resource is ${JSON.stringify(body.resource)}, expected ${config.mcpUrl}`);
  const servers = Array.isArray(body.authorization_servers) ? body.authorization_servers.map(String) : [];
  if (!servers.some((s) => s.includes(config.customer.entra.tenant_id)))
    return result(
      false,
      `authorization_servers ${JSON.stringify(servers)} do not name tenant ${config.customer.entra.tenant_id}`,
    );
  return result(true, `resource and authorization server (${servers[0]}) as configured`);
}
