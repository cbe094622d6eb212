import { CONFIG_OPTION, type Command } from "../lib/cli.ts";
import { notBuilt } from "./not-built.ts";

export const proxyCommand: Command = {
  name: "proxy",
  summary: "the blue/green reverse proxy on :3712, and its admin commands",
  subcommands: [
    notBuilt("run", "run the proxy (what launchd/systemd start)", "[--config DIR]", "proxy", { config: CONFIG_OPTION }),
    notBuilt("status", "live color, release and health of each color", "[--config DIR] [--json]", "proxy", { config: CONFIG_OPTION }),
    notBuilt("switch", "make COLOR live (refused when it is not healthy)", "COLOR [--config DIR]", "proxy", { config: CONFIG_OPTION }),
    notBuilt("pause", "hold new requests (bounded), e.g. during a database move", "[--config DIR]", "proxy", { config: CONFIG_OPTION }),
    notBuilt("resume", "release held requests", "[--config DIR]", "proxy", { config: CONFIG_OPTION }),
  ],
};
