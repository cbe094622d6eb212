import { CONFIG_OPTION, type Command } from "../lib/cli.ts";
import { notBuilt } from "./not-built.ts";

export const upCommand: Command = notBuilt("up", "the whole appliance in one terminal: Postgres, blue, green, proxy", "[--dev] [--config DIR]", "deploy and up", {
  dev: { type: "boolean", description: "create a dev customer and entity, print a service token and the `claude mcp add` line" },
  config: CONFIG_OPTION,
});
