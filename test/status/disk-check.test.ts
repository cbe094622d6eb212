/**
 * The disk check, the one status test about the machine's disk: its thresholds come from
 * appliance.yaml (status.disk_*_free_percent), so what it says is decided by the test, not by how
 * full this machine's disk happens to be. Every other test's config sets them to 0 (test/helpers/config.ts).
 */
import { describe, expect, test } from "bun:test";
import { statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { checkDisk } from "../../src/status/disk-check.ts";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";

const checkWith = (status: Record<string, number>, dataDir = tempDir("axe-disk")) =>
  checkDisk(loadConfig({ dir: makeConfigDir({ appliance: { data_dir: dataDir, status } }) }));

describe("status: disk", () => {
  test("the defaults are 15% (yellow) and 5% (red), as documented", () => {
    const dir = makeConfigDir();
    // a config that says nothing about status: write appliance.yaml without the helper's test thresholds
    writeFileSync(join(dir, "appliance.yaml"), "customer: axe\n");
    const config = loadConfig({ dir });
    expect(config.appliance.status).toEqual({ disk_warn_free_percent: 15, disk_fail_free_percent: 5 });
  });

  test("green at 0, yellow and red when this file system's free share is under the thresholds, with the numbers", () => {
    const data = tempDir("axe-disk");
    const stats = statfsSync(data);
    const freePercent = (100 * stats.bavail) / stats.blocks; // under 100: a file system keeps blocks for itself
    expect(freePercent).toBeLessThan(100);

    const green = checkWith({ disk_warn_free_percent: 0, disk_fail_free_percent: 0 }, data);
    expect(green.check).toMatchObject({ name: "disk", level: "ok" });
    expect(green.check.summary).toMatch(new RegExp(`free of .* \\(\\d+%\\) at ${data}$`));
    expect(green.disk).toMatchObject({ path: data });
    expect(green.disk!.totalBytes).toBeGreaterThan(green.disk!.freeBytes);

    const yellow = checkWith({ disk_warn_free_percent: 100, disk_fail_free_percent: 0 }, data);
    expect(yellow.check.level).toBe("warn");
    expect(yellow.check.summary).toEndWith(": under 100% free");

    const red = checkWith({ disk_warn_free_percent: 100, disk_fail_free_percent: 100 }, data);
    expect(red.check.level).toBe("fail");
    expect(red.check.summary).toEndWith(": under 100% free");
  });

  test("a data directory not made yet is measured on the file system it will be on", () => {
    const parent = tempDir("axe-disk");
    const result = checkWith({ disk_warn_free_percent: 0, disk_fail_free_percent: 0 }, join(parent, "not", "yet"));
    expect(result.disk!.path).toBe(parent);
  });

  test("status --json reports the disk yellow by its threshold, and a red threshold above the yellow one is refused", async () => {
    const dir = makeConfigDir({ appliance: { status: { disk_warn_free_percent: 100 } } });
    const run = await runCli(["status", "--json", "--config", dir]);
    const report = JSON.parse(run.stdout) as { checks: Array<{ name: string; level: string }> };
    expect(report.checks.find((c) => c.name === "disk")?.level).toBe("warn");

    const bad = makeConfigDir({ appliance: { status: { disk_warn_free_percent: 5, disk_fail_free_percent: 10 } } });
    const refused = await runCli(["status", "--config", bad]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain("status.disk_fail_free_percent");
  });
});
