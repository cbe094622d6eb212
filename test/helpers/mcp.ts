/** One MCP JSON-RPC POST, as a client sends it (Bearer token, both accepted types, the protocol version). */
export function mcpPost(
  url: string,
  token: string,
  body: unknown,
  init: { signal?: AbortSignal } = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-06-18",
    },
    body: JSON.stringify(body),
    ...init,
  });
}
