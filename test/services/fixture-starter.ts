/**
 * Starts blue through the child backend with the fixture process as its program, then returns
 * (like `deploy receive` does after it started a color): argv[2] is the config directory, argv[3]
 * the fixture's output file.
 */
import { loadConfig } from "../../src/config/load.ts";
import { serviceSpec } from "../../src/services/backend.ts";
import { ChildBackend } from "../../src/services/child.ts";

const [dir, out] = process.argv.slice(2) as [string, string];
const config = loadConfig({ dir });
const fixture = [process.execPath, `${import.meta.dir}/fixture-process.ts`];
const backend = new ChildBackend(config, {
  spec: (name) => {
    const real = serviceSpec(config, name, fixture);
    return { ...real, env: { ...real.env, FIXTURE_OUT: out } };
  },
});
await backend.start("blue");
console.log("started");
