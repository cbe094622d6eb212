/**
 * Runs @modelcontextprotocol/conformance's server scenarios against `axe-appliance serve --no-auth`
 * (a real child process on a fresh test database). Scenarios that need capabilities frame does not
 * have (prompts, resources, sampling, fixture tools) are listed with reasons in
 * conformance-baseline.yml; the run fails on any other failure and on a stale baseline entry.
 *
 * Run: ./node_modules/.bin/bun test/frame/conformance.ts   (from .ci/run)
 */
import { join } from "node:path";
import { MAIN, REPO } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { freePort } from "../helpers/ports.ts";
import { freshDatabase, stopTestCluster } from "../helpers/postgres.ts";
import { removeTempDirs } from "../helpers/tmp.ts";

const CLI = join(REPO, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
const BASELINE = join(import.meta.dir, "conformance-baseline.yml");

const db = await freshDatabase("conformance");
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const dir = makeConfigDir({ database: db.target, appliance: { frame: { public_url: base } } });
const serve = Bun.spawn(
  [process.execPath, MAIN, "serve", "--color", "blue", "--port", String(port), "--config", dir, "--no-auth"],
  {
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, AXE_CONFIG_DIR: "" },
  },
);
let code = 1;
try {
  for (
    let i = 0;
    i < 300 &&
    !(await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    ));
    i++
  ) {
    if (serve.exitCode !== null)
      throw new Error(`serve exited ${serve.exitCode}: ${await new Response(serve.stderr).text()}`);
    await Bun.sleep(100);
  }
  const extra = process.argv.slice(2);
  const run = Bun.spawn(
    [process.execPath, CLI, "server", "--url", `${base}/frame/mcp`, "--expected-failures", BASELINE, ...extra],
    { stdout: "inherit", stderr: "inherit" },
  );
  code = await run.exited;
} finally {
  serve.kill("SIGTERM");
  await serve.exited;
  await db.drop();
  await stopTestCluster();
  removeTempDirs();
}
console.log(
  code === 0
    ? "conformance: every applicable scenario passed; baseline failures as expected"
    : `conformance: failed (exit ${code})`,
);
process.exit(code);
