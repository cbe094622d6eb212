import { loadConfig } from "../config/load.ts";
import { CONFIG_OPTION, type Command, type Invocation, intFlag, JSON_OPTION, stringFlag } from "../lib/cli.ts";
import { EXIT, UsageError } from "../lib/errors.ts";
import { printable } from "../lib/terminal-text.ts";
import { COLORS, type Color } from "../proxy/admin-schema.ts";
import { proxySettings } from "../proxy/settings.ts";

const ADMIN =
  "Talks to the running proxy over its admin socket ({data_dir}/{proxy.admin_socket}); exit 9 when it refuses or is not running.";

const socketOf = (inv: Invocation) => proxySettings(loadConfig({ dir: stringFlag(inv, "config") })).adminSocket;
// the admin commands and the proxy import their implementation when they run, not with the CLI tree
const admin = () => import("../proxy/admin-client.ts");

function colorArgument(inv: Invocation, required: boolean): Color | undefined {
  const value = inv.positionals[0];
  if (value === undefined && !required) return undefined;
  if (!COLORS.includes(value as Color))
    throw new UsageError(
      "BAD_ARGUMENT",
      `${inv.path}: COLOR must be blue or green, not '${value ?? ""}'`,
      `see '${inv.path} --help'`,
    );
  return value as Color;
}

export const proxyCommand: Command = {
  name: "proxy",
  summary: "the blue/green reverse proxy on :3712, and its admin commands",
  subcommands: [
    {
      name: "run",
      summary: "run the proxy (what launchd/systemd start)",
      usage: "[--config DIR]",
      details: [
        "Listens on proxy.listen (default 127.0.0.1:3712) and routes by path prefix: /frame/ and the",
        "OAuth protected resource metadata go to the live color, proxy.routes to their upstreams.",
        "Also listens on proxy.tunnel_socket (default {data_dir}/run/tunnel.sock, 0600, root's alone; off: none):",
        "the tunnel's door, which no other account can take while the proxy is stopped; its X-Forwarded-* are believed.",
        "Answers GET /healthz itself. The live color is kept in {data_dir}/state/proxy.json.",
        "GET /metrics (Prometheus text) is on proxy.metrics_listen (default 127.0.0.1:3714, loopback only; off: none)",
        "and on the admin socket; the status page's last hour is kept in {data_dir}/state/proxy-latency.json.",
        "SIGTERM or SIGINT: stop accepting, finish in-flight requests (up to proxy.drain_timeout_ms), exit 0.",
        "Exit 3 on a bad appliance.yaml or state file; 9 when the port is taken, another proxy holds the admin socket,",
        "or a link or file (not a socket a stopped proxy left) sits where a socket goes.",
      ].join("\n"),
      options: { config: CONFIG_OPTION },
      run: async (inv) => {
        const config = loadConfig({ dir: stringFlag(inv, "config") });
        // the proxy imports nothing above it: the backup ages and the operator's page are handed in here
        const { backupMetrics } = await import("../status/backup-metrics.ts");
        return (await import("../proxy/run.ts")).runProxy(config, {
          extraMetrics: () => backupMetrics(config),
          // loaded on the first page view: its checks weigh RSS that most proxies never use
          statusPage: async (proxy) =>
            (await import("../status/serve.ts")).statusPageHtml(config, {
              status: async () => proxy.status(),
              latency: async () => proxy.latency(),
            }),
        });
      },
    },
    {
      name: "status",
      summary: "live color, release and health of each color",
      usage: "[--config DIR] [--json]",
      details: ADMIN,
      options: { config: CONFIG_OPTION, json: JSON_OPTION },
      run: async (inv) => {
        const status = await (await admin()).proxyStatus(socketOf(inv));
        if (inv.values.json) return void console.log(JSON.stringify(status));
        console.log(
          `live: ${status.live}${status.paused ? "  (paused)" : ""}   listen: ${status.listen}   mcp sessions: ${status.sessions}`,
        );
        for (const c of COLORS) {
          const s = status.colors[c];
          const mark = c === status.live ? "*" : " ";
          console.log(
            `${mark} ${c.padEnd(5)}  ${(s.healthy ? "healthy" : "DOWN").padEnd(7)}  release ${printable(s.release ?? "-")}  in-flight ${s.inflight}  ${s.upstream}${s.last_error ? `  (${printable(s.last_error)})` : ""}`,
          );
        }
      },
    },
    {
      name: "switch",
      summary: "make COLOR live (refused when it is not healthy)",
      usage: "COLOR [--config DIR]",
      details: `COLOR is blue or green. In-flight requests finish on the old color.\n${ADMIN}`,
      positionals: 1,
      options: { config: CONFIG_OPTION },
      run: async (inv) => {
        const result = await (await admin()).switchLiveColor(socketOf(inv), colorArgument(inv, true)!);
        console.log(
          result.changed ? `live: ${result.live} (was ${result.previous})` : `live: ${result.live} (already)`,
        );
      },
    },
    {
      name: "drain",
      summary: "wait until COLOR (default: the passive one) has no request in flight and no MCP session pinned",
      usage: "[COLOR] [--timeout MS] [--config DIR]",
      details: [
        "Sessions stay pinned to the color that created them until they end or proxy.drain_timeout_ms after",
        "the switch away from it passes; drain waits for that too, and never cuts a pin short.",
        `Exit 0 when drained, 9 when the timeout passed first or COLOR is live.\n${ADMIN}`,
      ].join("\n"),
      positionals: 1,
      options: {
        config: CONFIG_OPTION,
        timeout: {
          type: "string",
          value: "MS",
          description: "give up after MS milliseconds (default proxy.drain_timeout_ms)",
        },
      },
      run: async (inv) => {
        const color = colorArgument(inv, false);
        const timeoutMs = intFlag(inv, "timeout", 1, 600_000);
        const result = await (await admin()).drainColor(socketOf(inv), {
          ...(color ? { color } : {}),
          ...(timeoutMs ? { timeoutMs } : {}),
        });
        console.log(
          `${result.color}: ${result.drained ? "drained" : `still ${result.inflight} in flight, ${result.sessions} MCP sessions pinned`}; ${result.sessions_released} MCP sessions released`,
        );
        return result.drained ? EXIT.ok : EXIT.proxy;
      },
    },
    {
      name: "pause",
      summary: "hold new requests (each up to proxy.pause_timeout_ms, then 503), e.g. during a database move",
      usage: "[--config DIR]",
      details: ADMIN,
      options: { config: CONFIG_OPTION },
      run: async (inv) => void console.log(`paused (${(await (await admin()).pauseProxy(socketOf(inv))).held} held)`),
    },
    {
      name: "resume",
      summary: "release held requests",
      usage: "[--config DIR]",
      details: ADMIN,
      options: { config: CONFIG_OPTION },
      run: async (inv) =>
        void console.log(`resumed (${(await (await admin()).resumeProxy(socketOf(inv))).held} released)`),
    },
  ],
};
