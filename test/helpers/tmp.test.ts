/**
 * The tmp helper as a run sees it: a second `bun test` over fixture files, with its own TMPDIR.
 * What a file made (a directory, a process naming it) is gone before the next file starts, and
 * an interrupted run removes its temp dirs on the way out.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { REPO } from "./cli.ts";
import { isAlive, processesNaming } from "./processes.ts";
import { tempDir } from "./tmp.ts";
import { waitFor } from "./wait.ts";

function bunTest(files: string[], tmp: string) {
  return Bun.spawn([process.execPath, "test", ...files.map((f) => `./test/helpers/fixtures/${f}`)], {
    cwd: REPO,
    env: { ...process.env, TMPDIR: tmp, AXE_TEST_HOLD_PORTS: "" },
    stdout: "pipe",
    stderr: "pipe",
  });
}

/** `npm test`'s runner (test/run.ts) over fixture files, in two parallel workers. */
function npmTest(files: string[], tmp: string) {
  return Bun.spawn([process.execPath, "./test/run.ts", ...files.map((f) => `./test/helpers/fixtures/${f}`)], {
    cwd: REPO,
    env: { ...process.env, TMPDIR: tmp, AXE_TEST_HOLD_PORTS: "", AXE_TEST_WORKERS: "2" },
    stdout: "pipe",
    stderr: "pipe",
  });
}

const lineWith = (text: string, key: string) =>
  JSON.parse(text.split("\n").find((l) => l.startsWith(`{"${key}"`)) ?? "{}") as Record<string, unknown>;

describe("test temp dirs", () => {
  test("a file's directories and the processes naming them are gone before the next file starts", async () => {
    const tmp = tempDir("axe-tmprun");
    const run = bunTest(["leaves-behind.ts", "comes-after.ts"], tmp);
    const [stdout, stderr, code] = await Promise.all([
      new Response(run.stdout).text(),
      new Response(run.stderr).text(),
      run.exited,
    ]);
    const left = lineWith(stdout, "dir") as { dir: string; pids: number[] };
    if (code !== 0) console.error(stdout, stderr);
    expect(code).toBe(0);
    expect(stderr).toContain(
      `test leak: test/helpers/fixtures/leaves-behind.ts left pid ${left.pids[0]} running (sh -c`,
    );
    expect(left.dir.startsWith(tmp)).toBe(true);
    expect(existsSync(left.dir)).toBe(false);
    for (const pid of left.pids) expect(isAlive(pid)).toBe(false); // the shell that named the dir, and its child
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);

  test("an interrupted run (SIGTERM, as CI's timeout sends) stops its test cluster and removes its temp dirs on the way out", async () => {
    const tmp = tempDir("axe-tmprun");
    const run = bunTest(["interrupted.ts"], tmp);
    const reader = run.stdout.getReader();
    let out = "";
    while (!out.includes('{"dir"')) {
      const { done, value } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    const { dir, postmaster } = lineWith(out, "dir") as { dir: string; postmaster: number };
    expect(existsSync(dir)).toBe(true);
    expect(isAlive(postmaster)).toBe(true);
    run.kill("SIGTERM");
    expect(await run.exited).toBe(143);
    expect(existsSync(dir)).toBe(false);
    expect(isAlive(postmaster)).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);

  test("npm test's parallel workers: the cluster a worker kept is stopped and the run's dir removed when the run ends", async () => {
    const tmp = tempDir("axe-tmprun");
    const run = npmTest(["keeps-cluster.ts", "comes-after.ts"], tmp);
    const [stdout, stderr, code] = await Promise.all([
      new Response(run.stdout).text(),
      new Response(run.stderr).text(),
      run.exited,
    ]);
    if (code !== 0) console.error(stdout, stderr);
    expect(code).toBe(0);
    expect(stderr).toContain("2 pass");
    // a worker's output reaches the runner's stderr, a file's at a time
    const { dir, postmaster } = lineWith(stderr, "dir") as { dir: string; postmaster: number };
    expect(dir.startsWith(tmp)).toBe(true);
    expect(isAlive(postmaster)).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);

  test("npm test interrupted (SIGTERM): its workers' clusters are stopped and its dir removed", async () => {
    const tmp = tempDir("axe-tmprun");
    const run = npmTest(["interrupted.ts", "keeps-cluster.ts"], tmp);
    // a worker's output comes when its file is done, so the clusters are found by what they name
    const postmasters = () => processesNaming([tmp]).filter((p) => /postgres -D /.test(p.command));
    await waitFor("both workers' clusters running", () => postmasters().length === 2);
    const started = postmasters();
    run.kill("SIGTERM");
    expect(await run.exited).toBe(143);
    for (const { pid } of started) expect(isAlive(pid)).toBe(false);
    expect(processesNaming([tmp])).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);
});
