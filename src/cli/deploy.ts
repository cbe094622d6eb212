import { CONFIG_OPTION, type Command } from "../lib/cli.ts";
import { notBuilt } from "./not-built.ts";

export const deployCommand: Command = {
  name: "deploy",
  summary: "receive signed releases (SSH forced command), push them, roll back",
  subcommands: [
    notBuilt("receive", "read a signed release on stdin, stage it on the passive color, gate, switch", "[--config DIR]", "deploy", { config: CONFIG_OPTION }),
    notBuilt("push", "send a release to a customer's machine over ssh", "--to CUSTOMER|--all [--release DIR]", "deploy"),
    notBuilt("rollback", "switch back to the warm standby color", "[--config DIR]", "deploy", { config: CONFIG_OPTION }),
    notBuilt("status", "live and standby releases", "[--config DIR] [--json]", "deploy", { config: CONFIG_OPTION }),
    notBuilt("history", "the deploy journal", "[--config DIR] [--json]", "deploy", { config: CONFIG_OPTION }),
  ],
};
