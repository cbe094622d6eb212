/** Loaded before every test file (bunfig.toml): stop what the run started, remove temp dirs. */
import { afterAll } from "bun:test";
import { holdPorts } from "./ports.ts";
import { stopTestCluster } from "./postgres.ts";
import { removeTempDirs } from "./tmp.ts";

// .ci/run holds the appliance's default ports for the run: a test that assumes one is free fails at once
const releasePorts = holdPorts(process.env.AXE_TEST_HOLD_PORTS ?? "");

afterAll(async () => {
  releasePorts();
  await stopTestCluster();
  removeTempDirs();
});
