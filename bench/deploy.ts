#!/usr/bin/env bun
import { copyFileSync } from "node:fs";
/**
 * deploy benchmark: a gated blue/green deploy (`deploy receive`: verify, install, migrate, restart
 * the passive color, health, MCP check, switch, drain) against the peer most operators start
 * with: one process, restarted in place on the new release (what `systemctl restart` of a single
 * service does). For the peer the standby color is stopped first, since with a standby running
 * the proxy would fail requests over to it and hide the restart.
 * Same appliance, same release size, same MCP load through the proxy, rounds alternating.
 *
 *   bun bench/deploy.ts [--rounds 3] [--workers 4]
 *
 * Reported per method: time until the new release serves, and requests failed meanwhile.
 */
import { parseArgs } from "node:util";
import { other, pointColor } from "../src/deploy/colors.ts";
import { findRelease, installRelease, stagingPath } from "../src/deploy/releases.ts";
import { colorUrl } from "../src/deploy/switch.ts";
import { proxyStatus } from "../src/proxy/admin-client.ts";
import { linkCurrent } from "../src/services/unit-paths.ts";
import { healthOf, releaseStreamFile, runAppliance, startAppliance, startLoad } from "../test/deploy/appliance.ts";
import { makeRelease } from "../test/deploy/fixtures.ts";
import { stopTestCluster } from "../test/helpers/postgres.ts";
import { removeTempDirs } from "../test/helpers/tmp.ts";

const { values: flags } = parseArgs({
  options: { rounds: { type: "string", default: "3" }, workers: { type: "string", default: "4" } },
});
const ROUNDS = Number(flags.rounds);
const WORKERS = Number(flags.workers);

interface Sample {
  ms: number;
  failed: number;
  ok: number;
}

/** Stops the standby color and waits until the proxy no longer counts on it. */
async function singleProcess(app: Awaited<ReturnType<typeof startAppliance>>): Promise<void> {
  const standby = other((await proxyStatus(app.socket)).live);
  await app.backend.stop(standby);
  while ((await proxyStatus(app.socket)).colors[standby].healthy) await Bun.sleep(50);
}

async function main() {
  const app = await startAppliance();
  const samples: Record<"blue/green" | "in-place", Sample[]> = { "blue/green": [], "in-place": [] };
  let n = 0;
  try {
    const first = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease(`9.0.${n++}`)))
      .done;
    if (first.code !== 0) throw new Error(`first deploy failed: ${first.stderr}`);
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? (["blue/green", "in-place"] as const) : (["in-place", "blue/green"] as const);
      for (const method of order) {
        const release = await makeRelease(`9.0.${n++}`);
        const stream = releaseStreamFile(release);
        if (method === "in-place") await singleProcess(app);
        const load = await startLoad(app, WORKERS);
        await Bun.sleep(300);
        const t0 = performance.now();
        if (method === "blue/green") {
          const run = await runAppliance(app, ["deploy", "receive"], stream).done;
          if (run.code !== 0) throw new Error(`deploy failed: ${run.stderr}`);
          console.log(
            `  blue/green ${release.manifest.version}: receive-to-switch ${run.report!.receiveToSwitchMs} ms, total ${run.report!.totalMs} ms`,
          );
        } else {
          // the peer: install the same way, then restart the live color in place and wait for it
          const live = (await proxyStatus(app.socket)).live;
          const staged = stagingPath(app.config.paths.data);
          copyFileSync(release.binary, staged);
          if (!findRelease(app.config.paths.data, release.manifest.version))
            installRelease(app.config.paths.data, { manifest: release.manifest, jws: release.jws, file: staged });
          pointColor(app.config.paths.data, live, release.manifest.version);
          linkCurrent(app.config.paths.data, live, release.manifest.version);
          await app.backend.restart(live);
          while (
            !(await healthOf(colorUrl(app.config, live)).then(
              (h) => h.release === release.manifest.version,
              () => false,
            ))
          )
            await Bun.sleep(20);
        }
        const ms = performance.now() - t0;
        await Bun.sleep(300);
        const result = await load.stop();
        samples[method].push({ ms, failed: result.failed, ok: result.ok });
        console.log(
          `round ${round + 1} ${method.padEnd(10)} ${ms.toFixed(0).padStart(6)} ms to the new release, ${result.failed} of ${result.ok + result.failed} requests failed`,
        );
      }
    }
  } finally {
    await app.stop();
    await stopTestCluster();
    removeTempDirs();
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const bg = samples["blue/green"];
  const ip = samples["in-place"];
  const bgMs = median(bg.map((s) => s.ms));
  const ipMs = median(ip.map((s) => s.ms));
  const failed = (xs: Sample[]) => xs.reduce((a, s) => a + s.failed, 0);
  const total = (xs: Sample[]) => xs.reduce((a, s) => a + s.failed + s.ok, 0);
  console.log(
    `\nmedian time to the new release: blue/green ${bgMs.toFixed(0)} ms, in-place ${ipMs.toFixed(0)} ms (ratio ${(bgMs / ipMs).toFixed(2)})`,
  );
  console.log(`failed requests: blue/green ${failed(bg)} of ${total(bg)}, in-place ${failed(ip)} of ${total(ip)}`);
}

await main();
process.exit(0);
