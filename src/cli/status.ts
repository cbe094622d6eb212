import { CONFIG_OPTION, JSON_OPTION, type Command } from "../lib/cli.ts";
import { notBuilt } from "./not-built.ts";

export const statusCommand: Command = notBuilt("status", "live color, health, last deploy, backup ages on this machine", "[--json] [--config DIR]", "operator's view", {
  json: JSON_OPTION,
  config: CONFIG_OPTION,
});
