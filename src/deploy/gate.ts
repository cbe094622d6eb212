/**
 * The health gate a color passes before it may go live: its /healthz answers 200 with the
 * expected color and release, proved with the install's color key (src/lib/color-proof.ts) so that
 * no token goes to whatever else holds the port, then a real MCP exchange (initialize, then tools/list, through the
 * SDK's own client) with a short-lived service token succeeds.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Config } from "../config/load.ts";
import { HealthSchema } from "../frame/http/health.ts";
import {
  CHALLENGE_HEADER,
  colorMustProve,
  loadColorKey,
  newChallenge,
  PROOF_HEADER,
  provesColor,
} from "../lib/color-proof.ts";
import type { Color } from "../lib/colors.ts";
import { DeployError } from "../lib/errors.ts";
import { parseJsonOrUndefined } from "../lib/json.ts";
import { networkFailure } from "../lib/network-error.ts";
import { pollUntil } from "../lib/poll.ts";
import { buildInfo } from "../lib/version.ts";
import type { ColorRunner } from "./color-runner.ts";

export interface HealthExpectation {
  url: string;
  color: Color;
  release: string;
  timeoutMs: number;
  /** Fails fast when the service has died instead of waiting out the timeout. */
  backend?: ColorRunner;
  /** The install's color key: only an answer with the color's proof counts (colorMustProve). */
  colorKey?: Buffer;
}

/** The key a color's answer must be proved with, or undefined for a release from before proofs. */
export function gateKey(config: Config, color: Color): Buffer | undefined {
  return colorMustProve(config.paths.data, color) ? loadColorKey(config.paths.secrets) : undefined;
}

/** Polls /healthz until it reports the color on the release, healthy; returns a detail line. */
export async function waitForHealth(expect: HealthExpectation): Promise<string> {
  let last = "no answer yet";
  const healthy = await pollUntil(
    async () => {
      try {
        const challenge = newChallenge();
        const response = await fetch(`${expect.url}/healthz`, {
          signal: AbortSignal.timeout(2000),
          headers: { [CHALLENGE_HEADER]: challenge },
        });
        const text = await response.text();
        const health = HealthSchema.safeParse(parseJsonOrUndefined(text));
        if (!health.success) last = `HTTP ${response.status}, not a frame /healthz answer: ${text.slice(0, 200)}`;
        else if (
          expect.colorKey &&
          !provesColor(expect.colorKey, expect.color, challenge, response.headers.get(PROOF_HEADER))
        )
          last = `what answers on ${expect.url} does not prove it is this install's ${expect.color} (no valid ${PROOF_HEADER}): another program may hold the port`;
        else if (
          response.status === 200 &&
          health.data.status === "ok" &&
          health.data.color === expect.color &&
          health.data.release === expect.release
        )
          return `${expect.color} answers /healthz on ${expect.release} (migration ${health.data.database.migration})`;
        else last = `HTTP ${response.status} ${JSON.stringify(health.data).slice(0, 200)}`;
      } catch (error) {
        last = networkFailure(error);
      }
      if (expect.backend && !(await expect.backend.status(expect.color)).running)
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

const MCP_TIMEOUT_MS = 10_000;

/** initialize (+ notifications/initialized) and tools/list as any MCP client does them; returns how many tools the color lists. */
export async function mcpCheck(mcpUrl: string, token: string): Promise<string> {
  const client = new Client({ name: "axe-deploy-gate", version: buildInfo().version });
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  try {
    await client.connect(transport, { timeout: MCP_TIMEOUT_MS }).catch((error: Error) => {
      throw new DeployError("MCP_INITIALIZE", `initialize failed: ${error.message}`);
    });
    const { tools } = await client.listTools(undefined, { timeout: MCP_TIMEOUT_MS }).catch((error: Error) => {
      throw new DeployError("MCP_TOOLS", `tools/list failed: ${error.message}`);
    });
    if (tools.length === 0) throw new DeployError("MCP_TOOLS", "tools/list answered with no tools");
    const server = client.getServerVersion()?.name ?? "server";
    return `initialize (${server}) and tools/list (${tools.length} tools) answered`;
  } finally {
    await client.close().catch(() => {});
  }
}
