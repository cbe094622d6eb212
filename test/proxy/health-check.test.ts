/** HealthCheck against a real upstream: thresholds both ways, connection failures count. */
import { afterAll, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Color } from "../../src/proxy/admin-schema.ts";
import { HealthCheck, type Probe } from "../../src/proxy/health-check.ts";
import { tempDir } from "../helpers/tmp.ts";
import { eventually, startUpstream, stopAll } from "./harness.ts";

afterAll(stopAll);

test("healthy and unhealthy after their thresholds; a dead port is unhealthy; the release is read", async () => {
  const dir = tempDir("axe-hc");
  const sick = join(dir, "sick");
  const upstream = await startUpstream("green", { RELEASE: "9.9.9", HEALTH_FILE: sick });
  const changes: Array<[Color, boolean, Probe]> = [];
  // a probe that a loaded machine answers late must not count as a bad answer: the states here come from 503s and a dead port
  const settings = { path: "/healthz", intervalMs: 30, timeoutMs: 10_000, healthyThreshold: 3, unhealthyThreshold: 2 };
  const check = new HealthCheck("green", upstream.url, settings, {
    healthChanged: (c, h, p) => changes.push([c, h, p]),
  });
  await check.start();
  expect(check.healthy).toBe(true);
  expect(check.release).toBe("9.9.9");
  writeFileSync(sick, "");
  await eventually(() => !check.healthy);
  expect(changes.at(-1)![1]).toBe(false);
  expect(changes.at(-1)![2].error).toBe("HTTP 503");
  rmSync(sick);
  await eventually(() => check.healthy);
  expect(changes.filter(([, healthy]) => healthy).length).toBe(2);
  check.stop();

  const dead = new HealthCheck("blue", "http://127.0.0.1:1", settings, { healthChanged: () => undefined }, true);
  await dead.start();
  expect(dead.healthy).toBe(false);
  expect(dead.lastError).toBeTruthy();
  dead.stop();
});
