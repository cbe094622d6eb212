/**
 * Runs in its own process group: plants `{data_dir}/run/services/blue.pid` with the JSON in
 * argv[3], asks the child backend to stop blue, and prints `survived` if that did not signal us.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { ChildBackend } from "../../src/services/child.ts";

const config = loadConfig({ dir: process.argv[2]! });
const dir = join(config.paths.run, "services");
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, "blue.pid"), process.argv[3]!);
await new ChildBackend(config, { stopTimeoutMs: 500 }).stop("blue");
console.log("survived");
