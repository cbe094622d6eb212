import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { loadConfig } from "../../src/config/load.ts";
import { journalFor } from "../../src/deploy/receive.ts";
import { StepRunner } from "../../src/deploy/steps.ts";
import { LatencyHistory } from "../../src/proxy/latency-history.ts";
import { latencyChartSvg } from "../../src/status/latency-chart.ts";
import { chartMarkers } from "../../src/status/serve.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("the status page's chart", () => {
  test("marks each deploy and rollback at its switch, and a switch no deploy explains", async () => {
    const config = loadConfig({ dir: makeConfigDir() });
    const deploy = new StepRunner(journalFor(config), "deploy", "op");
    deploy.report.release = "2.0.0";
    await deploy.step("switch", () => "blue -> green");
    deploy.finish(true);
    const failed = new StepRunner(journalFor(config), "deploy", "op");
    failed.report.release = "2.0.1";
    await failed.step("switch", () => Promise.reject(new Error("refused"))).catch(() => undefined);
    failed.finish(false);
    const now = Date.now();
    const markers = chartMarkers(config, [
      { time: new Date(now - 500).toISOString(), to: "green" }, // the deploy's own switch
      { time: new Date(now - 20 * 60_000).toISOString(), to: "blue" }, // `proxy switch blue` by hand
    ]);
    expect(markers.map((m) => [m.kind, m.label])).toEqual([
      ["deploy", "deploy 2.0.0"],
      ["switch", "switch to blue"],
    ]);
  });

  test("has an axis for latency and one for requests per minute; a minute's dots weigh by its requests", () => {
    const history = new LatencyHistory();
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    for (let i = 0; i < 200; i++) history.record(0.01, minute - 120_000);
    for (let i = 0; i < 2; i++) history.record(0.5, minute - 60_000);
    const svg = latencyChartSvg(history.series(minute + 1000).points, [
      { time: new Date(minute - 90_000).toISOString(), kind: "deploy", label: "deploy 2.0.0" },
    ]);
    expect(svg).toMatch(/class="axis count-axis"[^>]*>200<\/text>/);
    expect(svg).toMatch(/class="axis latency-axis"[^>]*>500 ms<\/text>/);
    const dots = [
      ...svg.matchAll(/<circle class="dot95 weighted" data-count="(\d+)"[^>]* r="([\d.]+)" fill-opacity="([\d.]+)"/g),
    ];
    const busy = dots.find((d) => d[1] === "200")!;
    const quiet = dots.find((d) => d[1] === "2")!;
    expect(Number(busy[2])).toBeGreaterThan(Number(quiet[2]));
    expect(Number(busy[3])).toBeGreaterThan(Number(quiet[3]));
    expect(svg).toMatch(/<g class="marker deploy"[^>]*><line [^>]*\/><text [^>]*>deploy 2\.0\.0<\/text>/);
  });

  test("the history survives a restart through its file; a damaged file starts an empty hour", () => {
    const file = `${tempDir("axe-latency")}/proxy-latency.json`;
    const before = new LatencyHistory();
    before.record(0.02);
    before.switched("green");
    before.save(file);
    const after = new LatencyHistory();
    expect(after.load(file)).toBe(true);
    expect(after.series()).toEqual(before.series());
    writeFileSync(file, "{");
    expect(new LatencyHistory().load(file)).toBe(false);
    expect(new LatencyHistory().load(`${file}.missing`)).toBe(false);
  });
});
