import { CONFIG_OPTION, type Command } from "../lib/cli.ts";
import { notBuilt } from "./not-built.ts";

export const auditCommand: Command = {
  name: "audit",
  summary: "the hash-chained audit log",
  subcommands: [notBuilt("verify", "walk the chain and name the first broken row", "[--entity E] [--config DIR]", "frame data", { config: CONFIG_OPTION })],
};
