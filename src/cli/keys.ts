import { CONFIG_OPTION, type Command } from "../lib/cli.ts";
import { notBuilt } from "./not-built.ts";
import { releaseInitCommand } from "./deploy.ts";

export const keysCommand: Command = {
  name: "keys",
  summary: "the master key (PII), the token key and the release signing key",
  subcommands: [
    notBuilt("init", "create the master and token keys (0600, never overwritten)", "[--config DIR]", "frame data", { config: CONFIG_OPTION }),
    notBuilt("rotate", "re-wrap every data key under a new master key while serving", "[--config DIR]", "frame data", { config: CONFIG_OPTION }),
    releaseInitCommand,
  ],
};
