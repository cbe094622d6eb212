/** The proxy as `axe-appliance proxy run` starts it, without loading the rest of the CLI. */
import { loadConfig } from "../../src/config/load.ts";
import { runProxy } from "../../src/proxy/run.ts";

process.exit(await runProxy(loadConfig({ dir: process.argv[2] })));
