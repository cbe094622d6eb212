import { loadConfig } from "../config/load.ts";
import { CONFIG_OPTION, type Command, choiceFlag, intFlag, stringFlag } from "../lib/cli.ts";
import { COLORS } from "../lib/colors.ts";
import { ConfigError, EXIT } from "../lib/errors.ts";
import { untilStopSignal } from "../lib/signals.ts";

export const serveCommand: Command = {
  name: "serve",
  summary: "run frame, the company's MCP server, as the blue or green copy",
  usage: "--color blue|green [--port N] [--config DIR] [--no-auth]",
  details: `
Serves MCP (Streamable HTTP, stateless) at {public_url}/frame/mcp, the OAuth protected resource
metadata at /.well-known/oauth-protected-resource[/frame/mcp], and GET /healthz. Accepts Entra ID
access tokens of this machine's customer and service tokens from 'axe-appliance token issue'.
Migrates the database at start. SIGTERM or SIGINT: stop accepting, finish in-flight requests, exit 0.
SIGHUP: read customers.yaml again (validated first; new entities are created and their tokens
accepted; a file that does not load, or a change of tenant, client id, Application ID URI, scope
or customer, keeps the running configuration and the log says why).`,
  options: {
    color: {
      type: "string",
      value: "blue|green",
      description: "which copy this is; picks the default port (frame.ports: blue 3710, green 3711)",
    },
    port: { type: "string", value: "N", description: "listen on this port instead" },
    config: CONFIG_OPTION,
    "no-auth": {
      type: "boolean",
      description:
        "development only: every request acts as admin of the customer's first entity; refused unless bound to loopback, " +
        "for requests with another Host or a proxy's headers, and on a data directory with a proxy state file or installed services",
    },
  },
  async run(inv) {
    const color = choiceFlag(inv, "color", COLORS, true)!;
    const port = intFlag(inv, "port", 0);
    const noAuth = inv.values["no-auth"] === true;
    const config = loadConfig({ dir: stringFlag(inv, "config") });
    if (noAuth) {
      const { productionFootprint } = await import("../services/footprint.ts");
      const found = productionFootprint(config);
      if (found.length)
        throw new ConfigError(
          "NO_AUTH_PRODUCTION",
          `--no-auth is refused: ${config.paths.data} is a production data directory (${found.join(", ")})`,
          "run --no-auth with a development config directory of its own (`axe-appliance up --dev` makes one)",
        );
    }
    // imported here: every other command (the proxy above all) would carry frame's RSS (docs/performance.md)
    const { startFrame } = await import("../frame/serve.ts");
    const frame = await startFrame({ config, color, noAuth, ...(port !== undefined ? { port } : {}) });
    if (noAuth)
      process.stderr.write(
        `\n!!! WARNING: frame ${color} runs with --no-auth on ${frame.url}: every request acts as ADMIN of entity ` +
          `'${config.customer.entities[0]!.name}'. For development on this machine only. !!!\n\n`,
      );
    process.stdout.write(`frame ${color} listening on ${frame.url} (MCP ${config.mcpUrl})\n`);
    const reload = () => void frame.reload();
    process.on("SIGHUP", reload);
    await untilStopSignal(() => frame.stop());
    process.off("SIGHUP", reload);
    return EXIT.ok;
  },
};
