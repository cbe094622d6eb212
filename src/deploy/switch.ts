/**
 * The second half of a deploy or rollback, shared by both: gate a color (health, MCP), switch
 * the proxy to it, drain the old color and check it stays running as the warm standby; and, when
 * a deploy fails before the switch, put the passive color back on its previous release.
 */

import type { Config } from "../config/load.ts";
import { urlHost } from "../lib/address.ts";
import type { Color } from "../lib/colors.ts";
import { DeployError } from "../lib/errors.ts";
import { pollUntil } from "../lib/poll.ts";
import { checkColor, drainColor, proxyStatus, switchLiveColor } from "../proxy/admin-client.ts";
import { proxySettings } from "../proxy/settings.ts";
import { withClientToken } from "./client-token.ts";
import type { ColorRunner } from "./color-runner.ts";
import { forgetColor, pointColor, readColors } from "./colors.ts";
import { gateKey, mcpCheck, waitForHealth } from "./gate.ts";
import type { StepRunner } from "./steps.ts";

export function colorUrl(config: Config, color: Color): string {
  const bind = config.appliance.frame.bind;
  return `http://${urlHost(bind)}:${config.appliance.frame.ports[color]}`;
}

interface GateOptions {
  config: Config;
  backend: ColorRunner;
  runner: StepRunner;
  color: Color;
  release: string;
}

/** health -> mcp -> switch. */
export async function gateAndSwitch({ config, backend, runner, color, release }: GateOptions): Promise<void> {
  const timeoutMs = config.appliance.deploy.health_timeout_ms;
  const url = colorUrl(config, color);
  const colorKey = gateKey(config, color);
  await runner.step("health", () =>
    waitForHealth({ url, color, release, timeoutMs, backend, ...(colorKey ? { colorKey } : {}) }),
  );
  await runner.step("mcp", () => withGateToken(config, (token) => mcpCheck(`${url}/frame/mcp`, token)));
  await runner.step("switch", () => switchWhenProxyAgrees(config, color, release, timeoutMs));
}

/** Issues a 5-minute reader token for the gate and revokes it afterwards. */
function withGateToken(config: Config, check: (token: string) => Promise<string>): Promise<string> {
  return withClientToken(
    config,
    { role: "reader", name: "deploy-gate", expiresInMs: 5 * 60_000, who: "deploy" },
    async (issued) => {
      try {
        return await check(issued.token);
      } finally {
        await issued.revoke();
      }
    },
  );
}

/**
 * The proxy switches only to a color its own health checks see healthy on the new release: wait
 * for that, having it probe the color now on every try (`POST /check`), so the switch does not
 * wait for its timer (1 s apart by default, two good answers after a restart). A proxy of an
 * older release without /check is asked for its status instead.
 */
async function switchWhenProxyAgrees(
  config: Config,
  color: Color,
  release: string,
  timeoutMs: number,
): Promise<string> {
  const socket = proxySettings(config).adminSocket;
  let last = "";
  const switched = await pollUntil(
    async () => {
      const seen = await checkColor(socket, color).catch(async () => (await proxyStatus(socket)).colors[color]);
      if (seen.healthy && seen.release === release) {
        const result = await switchLiveColor(socket, color);
        return result.changed ? `${result.previous} -> ${result.live}` : `${color} was already live`;
      }
      last = `proxy sees ${color} ${seen.healthy ? "healthy" : "unhealthy"} on ${seen.release ?? "no release"}${seen.last_error ? ` (${seen.last_error})` : ""}`;
      return undefined;
    },
    { timeoutMs, intervalMs: 50 },
  );
  if (switched) return switched;
  throw new DeployError(
    "SWITCH_TIMEOUT",
    `the proxy did not see ${color} healthy on ${release} within ${timeoutMs} ms: ${last}`,
    "see `axe-appliance proxy status`",
  );
}

/** drain -> standby. */
export async function finishSwitch({
  config,
  backend,
  runner,
  from,
}: {
  config: Config;
  backend: ColorRunner;
  runner: StepRunner;
  from: Color;
}): Promise<void> {
  const socket = proxySettings(config).adminSocket;
  await runner.step("drain", async () => {
    const result = await drainColor(socket, { color: from, timeoutMs: config.appliance.proxy.drain_timeout_ms });
    return result.drained
      ? `${from} has no request in flight`
      : `${from} still had ${result.inflight} request(s) in flight at the drain timeout`;
  });
  await runner.step("standby", async () => {
    if (!readColors(config.paths.data)[from]) return `no warm standby yet: ${from} never ran a release on this machine`;
    const status = await backend.status(from);
    if (!status.running)
      throw new DeployError(
        "STANDBY_DOWN",
        `${from} is not running, so there is no warm standby for rollback`,
        "start it again with the service backend",
      );
    return `${from} stays running on ${readColors(config.paths.data)[from]?.version ?? "its release"} as the warm standby`;
  });
}

/** Points `color` back at `version` and restarts it (or stops it when it had none). */
export async function restoreColor({
  config,
  backend,
  color,
  version,
}: {
  config: Config;
  backend: ColorRunner;
  color: Color;
  version: string | undefined;
}): Promise<void> {
  const data = config.paths.data;
  if (!version) {
    forgetColor(data, color);
    await backend.stop(color);
    return;
  }
  pointColor(data, color, version);
  await backend.restart(color);
}
