import { type Config, loadConfig } from "../config/load.ts";
import { CONFIG_OPTION, type Command, stringFlag } from "../lib/cli.ts";
import { EXIT } from "../lib/errors.ts";
import { createLogger } from "../lib/log.ts";
import { StopSignals } from "../lib/signals.ts";
import { devDir, ensureDevConfig } from "../services/dev-config.ts";
import type { RunningAppliance } from "../services/up.ts";

/** A 30-day admin token for the dev entity, and the line that connects Claude Code to it. */
async function devToken(config: Config, mcpUrl: string): Promise<string> {
  const { withClientToken } = await import("../deploy/client-token.ts");
  const grant = { role: "admin", name: "dev", expiresInMs: 30 * 24 * 3600_000, who: "up --dev" } as const;
  return withClientToken(config, grant, async ({ token, entity, expiresAt }) =>
    [
      `service token for entity ${entity} (admin, expires ${expiresAt.toISOString()}; shown once):`,
      `  ${token}`,
      "",
      "connect Claude Code:",
      `  claude mcp add --transport http axe ${mcpUrl} --header "Authorization: Bearer ${token}"`,
    ].join("\n"),
  );
}

export const upCommand: Command = {
  name: "up",
  summary: "the whole appliance in one terminal: Postgres, blue, green, proxy",
  usage: "[--dev] [--config DIR]",
  details: `
Starts the embedded Postgres (unless database.url is set), then proxy, blue and green as child
processes, restarted with backoff when they die (the line saying so quotes the last error the
service printed); Ctrl-C stops them all, also while they are still starting. Their logs go to
{data_dir}/logs/. With --dev and no --config: uses ./dev-data (or $AXE_DEV_DIR), creating a dev
customer and entity there on first use, and prints a service token and the \`claude mcp add\` line.`,
  options: {
    dev: {
      type: "boolean",
      description: "create a dev customer and entity, print a service token and the `claude mcp add` line",
    },
    config: CONFIG_OPTION,
  },
  run: async (inv) => {
    const dev = inv.values.dev === true;
    let dir = stringFlag(inv, "config");
    if (dev && !dir && !process.env.AXE_CONFIG_DIR) {
      dir = devDir();
      if (ensureDevConfig(dir)) process.stdout.write(`created a development appliance in ${dir}\n`);
    }
    const config = loadConfig({ dir });
    const log = createLogger({ base: { service: "axe-up" } });
    const { upAppliance } = await import("../services/up.ts");
    // Watched from here: a Ctrl-C while Postgres and the services are still starting stops them too.
    const signals = new StopSignals({
      onRepeat: () => process.stderr.write("still stopping; the services are finishing their requests\n"),
    });
    try {
      let app: RunningAppliance;
      try {
        app = await upAppliance(config, log, { signal: signals.aborted });
      } catch (error) {
        if (!signals.aborted.aborted) throw error;
        process.stdout.write("stopped before the appliance was up; everything it started is stopped\n");
        return EXIT.ok;
      }
      const { ports } = config.appliance.frame;
      const mcpUrl = `${app.proxyUrl}/frame/mcp`;
      const lines = [
        `axe-appliance is up: proxy ${app.proxyUrl} (live: ${app.live}), blue :${ports.blue}, green :${ports.green}; logs in ${config.paths.data}/logs`,
        `MCP endpoint: ${mcpUrl}`,
      ];
      if (dev)
        lines.push(
          "",
          await devToken(config, mcpUrl).catch(async (error) => (await app.stop(), Promise.reject(error))),
        );
      process.stdout.write(`${lines.join("\n")}\n\nCtrl-C stops everything.\n`);
      await signals.until(async () => {
        process.stdout.write("stopping proxy, green, blue and Postgres\n");
        await app.stop();
      });
    } finally {
      signals.dispose();
    }
    return EXIT.ok;
  },
};
