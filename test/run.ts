/**
 * `npm test`: every test file, in parallel workers (`bun test --parallel`), all of them under one
 * temp dir of the run's own (TMPDIR). Most of a test's time is spent waiting on other processes
 * (Postgres, restic, sshd, a color starting), so three workers on two cores take less than half
 * the time of one.
 *
 * Bun's workers end without running exit handlers, so what a worker keeps for the files it runs
 * (its Postgres cluster, the compiled binary) cannot be cleaned up by the worker itself: when bun
 * is done, or the run is interrupted, whatever still runs under the run's dir is stopped here and
 * the dir removed. The run also holds the ports AXE_TEST_HOLD_PORTS names, for all its workers.
 *
 * Arguments go to `bun test` (`npm test -- test/backup`, `npm test -- --update-timings`).
 * AXE_TEST_WORKERS sets the number of workers (default 3; 1 runs the files one after another).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { holdPorts } from "./helpers/ports.ts";
import { processesNaming, processTree, stopProcesses } from "./helpers/processes.ts";

const REPO = join(import.meta.dir, "..");
const TIMINGS = join(REPO, "test", "timings.json");

const workers = Number(process.env.AXE_TEST_WORKERS ?? 3);
if (!Number.isInteger(workers) || workers < 1) {
  console.error(`AXE_TEST_WORKERS must be a whole number of at least 1, not ${process.env.AXE_TEST_WORKERS}`);
  process.exit(2);
}

const runDir = mkdtempSync(join(tmpdir(), "axe-test-"));
await chmod(runDir, 0o755); // as root, the test clusters run as `postgres` and must reach into it
const releasePorts = holdPorts(process.env.AXE_TEST_HOLD_PORTS ?? "");

const args = ["test", "--timeout", "60000"];
if (workers > 1) args.push(`--parallel=${workers}`, "--no-isolate");
if (existsSync(TIMINGS)) args.push(`--timings=${TIMINGS}`); // the slowest files start first
const bun = Bun.spawn([process.execPath, ...args, ...process.argv.slice(2)], {
  cwd: REPO,
  env: { ...process.env, TMPDIR: runDir, AXE_TEST_HOLD_PORTS: "" },
  stdio: ["inherit", "inherit", "inherit"],
});

let interrupted: NodeJS.Signals | undefined;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
  process.on(signal, () => {
    interrupted ??= signal;
    bun.kill(signal);
  });

const code = await bun.exited;
releasePorts();
const leftovers = processesNaming([`${runDir}/`]).flatMap((p) => processTree(p.pid));
stopProcesses([...new Map(leftovers.map((p) => [p.pid, p])).values()]);
rmSync(runDir, { recursive: true, force: true });
if (interrupted)
  console.error(`test run interrupted by ${interrupted}: its processes are stopped, its temp dir removed`);
process.exit(interrupted ? 128 + (interrupted === "SIGINT" ? 2 : interrupted === "SIGTERM" ? 15 : 1) : code);
