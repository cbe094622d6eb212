/**
 * The HTTP answers frame gives outside MCP itself: OAuth challenges (RFC 6750 / RFC 9728),
 * JSON-RPC errors for requests the transport never sees, and the protected resource metadata.
 */
import type { Config } from "../../config/load.ts";
import type { AuthError } from "../../lib/errors.ts";

export const PRM_PATH = "/.well-known/oauth-protected-resource";

/** The public base URL (scheme://host[:port]) the MCP URL hangs off. */
export function publicBase(config: Config): string {
  return config.mcpUrl.replace(/\/frame\/mcp$/, "");
}

/**
 * The scope a client must request from Entra: `{app id uri or api://client id}/{scope}`; unknown
 * (undefined) while the customer's API app is not registered yet (client id TBD, no URI).
 */
export function qualifiedScope(config: Config): string | undefined {
  const { app_id_uri, client_id, scope } = config.customer.entra;
  if (!app_id_uri && client_id === "TBD") return undefined;
  return `${(app_id_uri ?? `api://${client_id}`).replace(/\/+$/, "")}/${scope}`;
}

/** RFC 9728 metadata: resource is the exact MCP URL; the authorization server is the tenant's v2 issuer. */
export function protectedResourceMetadata(config: Config, issuer: string): Record<string, unknown> {
  return {
    resource: config.mcpUrl,
    authorization_servers: [issuer],
    scopes_supported: [qualifiedScope(config)].filter(Boolean),
    bearer_methods_supported: ["header"],
    resource_name: `frame (${config.customer.name})`,
  };
}

/** 401 / 403 / 503 for an AuthError, with the WWW-Authenticate header the status calls for. */
export function authErrorResponse(error: AuthError, config: Config): Response {
  const metadata = `resource_metadata="${publicBase(config)}${PRM_PATH}/frame/mcp"`;
  const qualified = qualifiedScope(config);
  const scope = qualified ? `, scope="${qualified}"` : "";
  const description = error.message.replace(/["\\]/g, "'");
  const headers: Record<string, string> = { "content-type": "application/json", "cache-control": "no-store" };
  let code: string;
  if (error.status === 503) {
    code = "temporarily_unavailable";
    headers["retry-after"] = "5";
  } else if (error.status === 403) {
    code = "insufficient_scope";
    headers["www-authenticate"] =
      `Bearer error="insufficient_scope", error_description="${description}"${scope}, ${metadata}`;
  } else if (error.reason === "missing_token") {
    code = "unauthorized";
    // RFC 6750 3.1: a request without credentials gets a challenge with no error code.
    headers["www-authenticate"] = `Bearer ${metadata}${scope}`;
  } else {
    code = "invalid_token";
    headers["www-authenticate"] = `Bearer error="invalid_token", error_description="${description}", ${metadata}`;
  }
  return new Response(JSON.stringify({ error: code, error_description: error.message, reason: error.reason }), {
    status: error.status,
    headers,
  });
}

/** A JSON-RPC error response for requests refused before MCP handles them (id null unless known). */
export function jsonRpcError(
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
  id: string | number | null = null,
): Response {
  return new Response(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
