import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { loadConfig } from "../../src/config/load.ts";
import { colorsFile, pointColor } from "../../src/deploy/colors.ts";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";

describe("status with a corrupt colors.json", () => {
  test("reports it as a failed check and still reports everything else", async () => {
    const dir = makeConfigDir();
    const data = loadConfig({ dir }).paths.data;
    pointColor(data, "blue", "1.0.0");
    writeFileSync(colorsFile(data), "{ torn");
    const run = await runCli(["status", "--json", "--config", dir]);
    expect(run.stderr).toBe("");
    const report = JSON.parse(run.stdout);
    expect(report.checks).toContainEqual({ name: "colors", level: "fail", summary: `${colorsFile(data)}: not JSON` });
    expect(report.checks.map((c: { name: string }) => c.name)).toContain("disk");
    expect(run.code).toBe(12);
  });
});
