/**
 * The health gate a color passes before it may go live: its /healthz answers 200 with the
 * expected color and release, then a real MCP exchange (initialize, then tools/list) with a
 * short-lived service token succeeds.
 */
import { DeployError } from "../lib/errors.ts";
import { pollUntil } from "../lib/poll.ts";
import type { ServiceBackend, ServiceName } from "../services/backend.ts";

export interface HealthExpectation {
  url: string;
  color: string;
  release: string;
  timeoutMs: number;
  /** Fails fast when the service has died instead of waiting out the timeout. */
  backend?: ServiceBackend;
}

/** Polls /healthz until it reports the color on the release, healthy; returns a detail line. */
export async function waitForHealth(expect: HealthExpectation): Promise<string> {
  let last = "no answer yet";
  const healthy = await pollUntil(
    async () => {
      try {
        const response = await fetch(`${expect.url}/healthz`, { signal: AbortSignal.timeout(2000) });
        const body = (await response.json().catch(() => ({}))) as {
          status?: string;
          color?: string;
          release?: string;
          database?: { migration?: number };
        };
        if (
          response.status === 200 &&
          body.status === "ok" &&
          body.color === expect.color &&
          body.release === expect.release
        )
          return `${expect.color} answers /healthz on ${expect.release} (migration ${body.database?.migration ?? "?"})`;
        last = `HTTP ${response.status} ${JSON.stringify(body).slice(0, 200)}`;
      } catch (error) {
        last = (error as Error).message;
      }
      if (expect.backend && !(await expect.backend.status(expect.color as ServiceName)).running)
        throw new DeployError(
          "HEALTH_DIED",
          `${expect.color} exited while starting (last answer: ${last})`,
          `see its log under data_dir/logs/${expect.color}.log`,
        );
      return undefined;
    },
    { timeoutMs: expect.timeoutMs, intervalMs: 100 },
  );
  if (healthy) return healthy;
  throw new DeployError(
    "HEALTH_TIMEOUT",
    `${expect.color} did not report healthy on release ${expect.release} within ${expect.timeoutMs} ms (last answer: ${last})`,
    `see its log under data_dir/logs/${expect.color}.log`,
  );
}

const PROTOCOL = "2025-06-18";

async function rpc(
  url: string,
  token: string,
  body: object,
): Promise<{ status: number; message?: { result?: unknown; error?: { message?: string } } }> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": PROTOCOL,
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!("id" in body)) return { status: response.status };
  // Streamable HTTP answers with JSON or with an SSE stream whose data lines hold the JSON-RPC message.
  const json = (response.headers.get("content-type") ?? "").includes("text/event-stream")
    ? text
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trim())
        .at(-1)
    : text;
  try {
    return { status: response.status, message: JSON.parse(json ?? "") };
  } catch {
    return { status: response.status };
  }
}

/** initialize + notifications/initialized + tools/list; returns how many tools the color lists. */
export async function mcpCheck(mcpUrl: string, token: string): Promise<string> {
  const init = await rpc(mcpUrl, token, {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: "axe-deploy-gate", version: "1" } },
  });
  const server = (init.message?.result as { serverInfo?: { name?: string } } | undefined)?.serverInfo;
  if (init.status !== 200 || !server)
    throw new DeployError(
      "MCP_INITIALIZE",
      `initialize answered HTTP ${init.status}${init.message?.error ? `: ${init.message.error.message}` : ""}`,
    );
  await rpc(mcpUrl, token, { jsonrpc: "2.0", method: "notifications/initialized" });
  const list = await rpc(mcpUrl, token, { jsonrpc: "2.0", id: 2, method: "tools/list", params: {} });
  const tools = (list.message?.result as { tools?: Array<{ name: string }> } | undefined)?.tools;
  if (list.status !== 200 || !Array.isArray(tools) || tools.length === 0)
    throw new DeployError(
      "MCP_TOOLS",
      `tools/list answered HTTP ${list.status} with ${Array.isArray(tools) ? "no tools" : "no tool list"}`,
    );
  return `initialize (${server.name ?? "server"}) and tools/list (${tools.length} tools) answered`;
}
