#!/usr/bin/env bun
/**
 * deploy benchmark: a gated blue/green deploy (`deploy receive`: verify, install, migrate, restart
 * the passive color, health, MCP check, switch, drain) against the peer most operators start
 * with: one process, restarted in place on the new release (what `systemctl restart` of a single
 * service does). For the peer the standby color is stopped first, since with a standby running
 * the proxy would fail requests over to it and hide the restart.
 * Same appliance, same release size, same MCP load through the proxy, rounds alternating.
 * The release stream reaches the receiver through a pipe, as it does under sshd.
 *
 *   bun bench/deploy.ts [--rounds 3] [--workers 4] [--health-interval MS]   (the proxy's; production's is 1000)
 *
 * Reported per method: time until the new release serves, and requests failed meanwhile; for
 * blue/green also the receiver's own figures: its verify step (read the stream, check the
 * signature, hash and stage the binary) against two peers in the same round: `sha256sum` of the
 * same binary (reading and hashing it once; coreutils may not use the CPU's SHA extensions) and a
 * durable copy (the stream from a pipe into the data directory with `dd conv=fsync`, nothing
 * checked), and receive->live (first byte read to the switch, verify included).
 */
import { copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { pointColor } from "../src/deploy/colors.ts";
import { findRelease, installRelease, stagingPath } from "../src/deploy/releases.ts";
import { colorUrl } from "../src/deploy/switch.ts";
import { otherColor } from "../src/lib/colors.ts";
import { proxyStatus } from "../src/proxy/admin-client.ts";
import {
  healthOf,
  releaseStreamFile,
  reportOf,
  runAppliance,
  startAppliance,
  startLoad,
} from "../test/deploy/appliance.ts";
import { makeRelease } from "../test/deploy/fixtures.ts";
import { stopTestCluster } from "../test/helpers/postgres.ts";
import { removeTempDirs } from "../test/helpers/tmp.ts";

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    workers: { type: "string", default: "4" },
    "health-interval": { type: "string", default: "100" },
  },
});
const ROUNDS = Number(flags.rounds);
const WORKERS = Number(flags.workers);

interface Sample {
  ms: number;
  failed: number;
  ok: number;
}

interface ReceiverFigures {
  verifyMs: number;
  sha256sumMs: number;
  durableMs: number;
  receiveToLiveMs: number;
}

/** `deploy receive` with the stream on a pipe (as sshd gives it), and its report. */
async function receiveThroughPipe(app: Awaited<ReturnType<typeof startAppliance>>, stream: string) {
  const child = Bun.spawn(
    ["sh", "-c", 'cat "$0" | exec "$1" deploy receive --config "$2"', stream, app.binary, app.config.dir],
    { stdout: "pipe", stderr: "pipe", env: { ...process.env, AXE_DEPLOY_WHO: "bench" } },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  const report = reportOf(stdout);
  if (code !== 0 || !report) throw new Error(`deploy failed (exit ${code}): ${stderr}`);
  return report;
}

/** The peer of the verify step: hashing the same binary once, from the page cache, in the same round. */
function sha256sumMs(file: string): number {
  const t0 = performance.now();
  const run = Bun.spawnSync(["sha256sum", file], { stdout: "pipe" });
  if (run.exitCode !== 0) throw new Error("sha256sum failed");
  return performance.now() - t0;
}

/**
 * The other peer of the verify step: the same stream read from a pipe and made durable in the data
 * directory, with nothing checked (`dd conv=fsync`). On a host whose sha256sum skips the CPU's SHA
 * extensions, this, not the hash, is the floor the verify step stands on.
 */
function durableCopyMs(stream: string, dir: string): number {
  const target = join(dir, "bench-durable-copy");
  const t0 = performance.now();
  const run = Bun.spawnSync(
    ["sh", "-c", 'cat "$0" | dd of="$1" bs=4M iflag=fullblock conv=fsync status=none', stream, target],
    { stdout: "ignore", stderr: "pipe" },
  );
  const ms = performance.now() - t0;
  rmSync(target, { force: true });
  if (run.exitCode !== 0) throw new Error(`dd failed: ${run.stderr.toString()}`);
  return ms;
}

/** Stops the standby color and waits until the proxy no longer counts on it. */
async function singleProcess(app: Awaited<ReturnType<typeof startAppliance>>): Promise<void> {
  const standby = otherColor((await proxyStatus(app.socket)).live);
  await app.backend.stop(standby);
  while ((await proxyStatus(app.socket)).colors[standby].healthy) await Bun.sleep(50);
}

async function main() {
  const app = await startAppliance({ healthIntervalMs: Number(flags["health-interval"]) });
  const samples: Record<"blue/green" | "in-place", Sample[]> = { "blue/green": [], "in-place": [] };
  const receiver: ReceiverFigures[] = [];
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
          const report = await receiveThroughPipe(app, stream);
          const figures = {
            verifyMs: report.steps.find((step) => step.step === "verify")!.ms,
            sha256sumMs: sha256sumMs(release.binary),
            durableMs: durableCopyMs(stream, app.config.paths.data),
            receiveToLiveMs: report.receiveToSwitchMs!,
          };
          receiver.push(figures);
          console.log(
            `  blue/green ${release.manifest.version} (${(release.manifest.size / 1e6).toFixed(0)} MB): verify ${figures.verifyMs} ms (sha256sum ${figures.sha256sumMs.toFixed(0)} ms, durable copy ${figures.durableMs.toFixed(0)} ms), receive->live ${figures.receiveToLiveMs} ms; ${report.steps.map((step) => `${step.step} ${step.ms}`).join(", ")}`,
          );
        } else {
          // the peer: install the same way, then restart the live color in place and wait for it
          const live = (await proxyStatus(app.socket)).live;
          const staged = stagingPath(app.config.paths.data);
          copyFileSync(release.binary, staged);
          if (!findRelease(app.config.paths.data, release.manifest.version))
            installRelease(app.config.paths.data, { manifest: release.manifest, jws: release.jws, file: staged });
          pointColor(app.config.paths.data, live, release.manifest.version);
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
  const verify = median(receiver.map((r) => r.verifyMs));
  const sum = median(receiver.map((r) => r.sha256sumMs));
  const durable = median(receiver.map((r) => r.durableMs));
  console.log(
    `median verify ${verify} ms against sha256sum ${sum.toFixed(0)} ms (ratio ${(verify / sum).toFixed(2)}) and a durable copy ${durable.toFixed(0)} ms (ratio ${(verify / durable).toFixed(2)}); median receive->live ${median(receiver.map((r) => r.receiveToLiveMs))} ms`,
  );
}

await main();
process.exit(0);
