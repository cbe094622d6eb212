/**
 * Temporary directories for tests, and what else a test file leaves behind. Each directory
 * belongs to the test file that made it and is removed when that file is done (when the next file
 * starts, or when the run ends), so a run holds one file's temp data at a time instead of every
 * file's (releases and installs are 100+ MB each). A directory a later file reuses (the test
 * cluster, the compiled binary) is made with `{ scope: "run" }` and goes when the run ends.
 * `afterFile` hands over other leftovers the same way (a process to kill). A process still running
 * that names one of the directories (a Postgres, a color, a receiver the test lost track of) is a
 * leak: it is reported on stderr and stopped before its directory goes. When the run is
 * interrupted (SIGINT, SIGTERM, SIGHUP) or exits without its afterAll, all of it goes on the way out.
 *
 * @example
 * const dir = tempDir("axe-data"); // gone once this test file is done, failed or not
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { processesNaming, processTree, stopProcesses } from "./processes.ts";

/** Synchronous, so it can run anywhere: from the next file's first call, and from an exit handler. */
type Cleanup = () => void;

const RUN = "(the whole run)";
const owners = new Map<string, { dirs: string[]; cleanups: Cleanup[] }>();
let current: string | undefined;

/** A fresh directory under the system temp dir, short enough for Unix socket paths. */
export function tempDir(prefix = "axe", options: { scope?: "file" | "run" } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  chmodSync(dir, 0o755); // as root, the embedded cluster runs as `postgres` and must reach into it
  entry(options.scope === "run" ? RUN : testFile()).dirs.push(dir);
  return dir;
}

/** Runs `cleanup` once the current test file is done (in the order opposite to registration), or when the run ends. */
export function afterFile(cleanup: Cleanup): void {
  entry(testFile()).cleanups.push(cleanup);
}

/** Runs `cleanup` when the run ends, whichever way it ends. */
export function afterRun(cleanup: Cleanup): void {
  entry(RUN).cleanups.push(cleanup);
}

/**
 * The test file running now (bun test sets Bun.main to it). Meeting a new one means the files
 * before it are done: their directories and processes go now. The preload asks before every test,
 * so a file that makes no directory still ends the one before it.
 */
export function testFile(): string {
  const file = Bun.main;
  if (file !== current) {
    current = file;
    for (const owner of [...owners.keys()]) if (owner !== RUN && owner !== file) cleanUp(owner);
  }
  return file;
}

/** The current file is done (a parallel worker's next file may not come): its directories and processes go now. */
export function endFile(): void {
  if (current) cleanUp(current);
  current = undefined;
}

/** Everything left, run-scoped included: at the end of the run, or on the way out of an interrupted one. */
export function removeTempDirs(): void {
  for (const owner of [...owners.keys()]) cleanUp(owner);
}

function entry(owner: string): { dirs: string[]; cleanups: Cleanup[] } {
  let found = owners.get(owner);
  if (!found) owners.set(owner, (found = { dirs: [], cleanups: [] }));
  return found;
}

function cleanUp(owner: string): void {
  const { dirs, cleanups } = entry(owner);
  owners.delete(owner);
  const attempt = (what: string, work: () => void) => {
    try {
      work();
    } catch (error) {
      console.error(`test cleanup after ${name(owner)}: ${what} failed: ${(error as Error).message}`);
    }
  };
  for (const cleanup of cleanups.reverse()) attempt("a cleanup", cleanup);
  const leaked = processesNaming(dirs).flatMap((p) => processTree(p.pid)); // and what they started
  leaked.splice(0, leaked.length, ...new Map(leaked.map((p) => [p.pid, p])).values());
  if (leaked.length > 0) {
    for (const { pid, command } of leaked)
      console.error(`test leak: ${name(owner)} left pid ${pid} running (${command.slice(0, 160)}); stopping it`);
    attempt("stopping its processes", () => stopProcesses(leaked));
  }
  for (const dir of dirs) attempt(`removing ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
}

const name = (owner: string) => (owner === RUN ? owner : relative(process.cwd(), owner));
