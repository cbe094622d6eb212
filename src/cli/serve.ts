import { CONFIG_OPTION, type Command } from "../lib/cli.ts";
import { notBuilt } from "./not-built.ts";

export const serveCommand: Command = notBuilt("serve", "run frame, the company's MCP server, as the blue or green copy", "--color blue|green [--port N] [--config DIR] [--no-auth]", "frame serve", {
  color: { type: "string", value: "blue|green", description: "which copy this is; picks the default port (blue 3710, green 3711)" },
  port: { type: "string", value: "N", description: "listen on this port instead" },
  config: CONFIG_OPTION,
  "no-auth": { type: "boolean", description: "development only, loopback only: every request acts as admin of the dev entity" },
});
