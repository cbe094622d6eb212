import { describe, expect, test } from "bun:test";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hostTarget } from "../../build/compile.ts";
import { REPO } from "../helpers/cli.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("npm run build", () => {
  test("the compiled binary runs alone in an empty directory, with no bun or node_modules", async () => {
    const out = tempDir("axe-dist");
    const build = Bun.spawnSync([process.execPath, join(REPO, "build/compile.ts"), "--out", out], {
      cwd: REPO,
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(build.exitCode).toBe(0);
    const sums = readFileSync(join(out, "SHA256SUMS"), "utf8");
    expect(sums).toMatch(/^[0-9a-f]{64} {2}axe-appliance\n$/);

    const alone = tempDir("axe-alone");
    copyFileSync(join(out, "axe-appliance"), join(alone, "axe-appliance"));
    const run = Bun.spawnSync(["./axe-appliance", "--version"], {
      cwd: alone,
      env: { PATH: "/nonexistent" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(run.stderr.toString()).toBe("");
    expect(run.exitCode).toBe(0);
    expect(run.stdout.toString()).toMatch(
      new RegExp(
        `^axe-appliance \\d+\\.\\d+\\.\\d+ \\(commit ([0-9a-f]{12}(-dirty)?|unknown), bun-${hostTarget()}, built \\d{4}-`,
      ),
    );

    const usage = Bun.spawnSync(["./axe-appliance", "nonsense"], {
      cwd: alone,
      env: { PATH: "/nonexistent" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr.toString()).toContain("unknown command");
  });
});
