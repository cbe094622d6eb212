import { CONFIG_OPTION, type Command } from "../lib/cli.ts";
import { notBuilt } from "./not-built.ts";

export const tokenCommand: Command = {
  name: "token",
  summary: "service tokens for automation and the operator",
  subcommands: [
    notBuilt("issue", "issue a token (printed once)", "--entity E --role reader|writer|admin --name N [--expires 90d]", "frame serve", { config: CONFIG_OPTION }),
    notBuilt("list", "list tokens (never their secrets)", "[--json]", "frame serve", { config: CONFIG_OPTION }),
    notBuilt("revoke", "revoke a token by id", "ID", "frame serve", { config: CONFIG_OPTION }),
  ],
};
