/**
 * Loaded before every test file (bunfig.toml): what a file made goes when it is done (tmp.ts),
 * and what the run started goes when the run ends, whichever way it ends.
 *
 * Under `npm test` (test/run.ts) the files run in parallel workers, and bun calls this afterAll
 * after each file a worker runs: there it ends the file only, and keeps what the worker's next
 * files reuse (its test cluster, the compiled binary); test/run.ts stops and removes all of that
 * when the run ends, because a worker's exit runs no handlers.
 */
import { afterAll, beforeEach } from "bun:test";
import { holdPorts } from "./ports.ts";
import { stopTestCluster } from "./postgres.ts";
import { endFile, removeTempDirs, testFile } from "./tmp.ts";

const worker = process.env.BUN_TEST_WORKER_ID !== undefined;

// .ci/run holds the appliance's default ports for the run: a test that assumes one is free fails at once
const releasePorts = holdPorts(process.env.AXE_TEST_HOLD_PORTS ?? "");

// the first test of a file ends the file before it, even when this one makes no temp dir
beforeEach(() => void testFile());

afterAll(async () => {
  if (worker) return endFile();
  releasePorts();
  try {
    await stopTestCluster();
  } finally {
    removeTempDirs();
  }
});

// An interrupted run (Ctrl-C, CI's timeout) or an early exit skips afterAll: stop and remove on the way out.
process.once("exit", removeTempDirs);
for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
  ["SIGHUP", 129],
] as const)
  process.once(signal, () => {
    console.error(`test run interrupted by ${signal}: removing its temp dirs and stopping its test cluster`);
    process.exit(code); // the exit handler above cleans up
  });
