/** `status` on a real pseudo-terminal (util-linux `script`): red/yellow/green in ANSI colors, none with NO_COLOR. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { MAIN, REPO } from "../helpers/cli.ts";
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
