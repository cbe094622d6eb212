/** `status` on a real pseudo-terminal (util-linux `script`): red/yellow/green in ANSI colors, none with NO_COLOR. */
import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadColorKey, RELEASE_ANSWER_FILE } from "../../src/lib/color-proof.ts";
import { MAIN, REPO, runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { recordSnapshots } from "./fixtures.ts";

async function onTerminal(dir: string, env: Record<string, string> = {}) {
  const script = Bun.which("script");
  if (!script) throw new Error("util-linux `script` is needed to give status a terminal");
  const child = Bun.spawn([script, "-qec", `${process.execPath} ${MAIN} status --config ${dir}`, "/dev/null"], {
    cwd: REPO,
    env: { ...process.env, AXE_CONFIG_DIR: "", TERM: "xterm", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  return { stdout, code };
}

describe("status on a terminal", () => {
  test("colors on a TTY: red for what is down, green for what is fine; exit 12", async () => {
    const dir = makeConfigDir(); // nothing runs: proxy and metadata are red
    recordSnapshots(join(dir, "data", "state"), { local: 2 });
    const { stdout, code } = await onTerminal(dir);
    expect(code).toBe(12);
    expect(stdout).toContain("\x1b[31mRED\x1b[0m");
    expect(stdout).toMatch(/\x1b\[31mFAIL\x1b\[0m\s+proxy\s+proxy not reachable/);
    expect(stdout).toMatch(/\x1b\[32mOK {2}\x1b\[0m\s+backup:local/);
    const plain = await onTerminal(dir, { NO_COLOR: "1" });
    expect(plain.code).toBe(12);
    expect(plain.stdout).not.toContain("\x1b[");
    expect(plain.stdout).toMatch(/FAIL\s+proxy/);
  }, 30_000);
});

describe("status prints what a color answered", () => {
  /** Whatever answers on blue's port, saying it is blue on `release`. */
  const blueSaying = (release: string) =>
    Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () =>
        Response.json({
          status: "ok",
          service: "axe-frame",
          color: "blue",
          release,
          database: { reachable: true, migration: 1 },
        }),
    });
  const statusConfig = (blue: { port?: number }) =>
    makeConfigDir({
      appliance: { proxy: { upstreams: { blue: `http://127.0.0.1:${blue.port}`, green: "http://127.0.0.1:1" } } },
    });

  test("a color's /healthz cannot steer the terminal: its release goes out without control sequences", async () => {
    // whatever answers on a color's port (a compromised release, an account that took a stopped color's port)
    const hostile = "1.0.0\x1b]0;owned\x07\x1b[2K\x1b[1A\u202e";
    const upstream = blueSaying(hostile);
    try {
      const dir = statusConfig(upstream);
      const run = await runCli(["status", "--config", dir]);
      expect(run.stdout).toMatch(/color:blue\s+live unknown, healthy, release 1\.0\.0/);
      expect(run.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u202e]/);
    } finally {
      upstream.stop(true);
    }
  }, 30_000);

  test("once the colors' release proves itself, a look-alike on a color's port is not shown as that color (decision 70)", async () => {
    const upstream = blueSaying("6.6.6-lookalike");
    try {
      const dir = statusConfig(upstream);
      const data = join(dir, "data");
      mkdirSync(join(data, "current", "blue"), { recursive: true });
      writeFileSync(join(data, "current", "blue", RELEASE_ANSWER_FILE), JSON.stringify({ proves_color: true }));
      mkdirSync(join(data, "state"), { recursive: true });
      writeFileSync(join(data, "state", "colors.json"), JSON.stringify({ blue: { version: "2.0.0", since: "t" } }));
      loadColorKey(join(dir, "secrets")); // as the proxy or a color makes it
      const run = await runCli(["status", "--config", dir]);
      expect(run.stdout).toMatch(
        /color:blue\s+live unknown DOWN \(release 2\.0\.0\): what answers on .* is not this install's blue/,
      );
      expect(run.stdout).not.toContain("6.6.6-lookalike");
    } finally {
      upstream.stop(true);
    }
  }, 30_000);
});
