/**
 * `deploy receive`: the SSH forced command. Reads a signed release on stdin and takes it live:
 *
 *   verify -> lock -> install -> version -> migrate -> start (passive color) -> health -> mcp
 *   -> switch -> drain -> standby -> prune
 *
 * Nothing from the stream runs before `verify` passes, which also refuses a release older than
 * the newest that went live here (release-floor.ts) unless `allowDowngrade`. Until `switch`
 * succeeds the live color is never touched; a failure before it puts the passive color back on
 * its previous release. Two runs change nothing on purpose and say so (`nothingDone`), never as
 * a failed deploy: a connection that sends no byte (no release sent), and the release that is
 * already live (refused unless forced: deploying it again would leave both colors on it and
 * nothing to roll back to).
 */
import { rmSync } from "node:fs";
import type { Config } from "../config/load.ts";
import { type Color, otherColor } from "../lib/colors.ts";
import { DeployError } from "../lib/errors.ts";
import { proxyStatus } from "../proxy/admin-client.ts";
import { proxySettings } from "../proxy/settings.ts";
import type { ColorRunner } from "./color-runner.ts";
import { pointColor, readColors } from "./colors.ts";
import { DeployJournal } from "./journal.ts";
import { acquireDeployLock, describeLockStep, type HeldLock } from "./lock.ts";
import { type Manifest, releaseSequence } from "./manifest.ts";
import { checkNotOlder, raiseFloor, readFloor } from "./release-floor.ts";
import { readRelease, unlessEmpty, type VerifiedRelease } from "./release-stream.ts";
import { type InstalledRelease, installRelease, pruneReleases, recordBinaryAnswer, stagingPath } from "./releases.ts";
import { assertOnlyRootWrites } from "./root-paths.ts";
import { runBinary } from "./run-binary.ts";
import { ALREADY_LIVE, NO_RELEASE_SENT, type RunReport, type StepReport, StepRunner } from "./steps.ts";
import { finishSwitch, gateAndSwitch, restoreColor } from "./switch.ts";

export interface ReceiveOptions {
  config: Config;
  input: AsyncIterable<Uint8Array>;
  /** Who deploys: the SSH key's comment or the Tailscale identity. */
  who: string;
  /** Accept a release older than the newest that went live here (never through the deploy key's forced command). */
  allowDowngrade?: boolean;
  /** Deploy the release even when it is already live (also asked for by the stream's request). */
  force?: boolean;
  /** Hears each step as it ends, for the operator watching the push. */
  onStep?: (step: StepReport) => void;
  /** Restarts and stops the colors (launchd, systemd or child processes). */
  backend: ColorRunner;
}

export interface RunOutcome {
  report: RunReport;
  error?: Error;
}

export function journalFor(config: Config): DeployJournal {
  return new DeployJournal(`${config.paths.state}/deploy-journal.jsonl`);
}

export function lockFileFor(config: Config): string {
  return `${config.paths.run}/deploy.lock`;
}

/** Runs the whole pipeline; the report says ok, or which step failed and why. */
export async function receiveRelease(options: ReceiveOptions): Promise<RunOutcome> {
  const { config } = options;
  const data = config.paths.data;
  const { backend } = options;
  const input = await unlessEmpty(options.input);
  const runner = new StepRunner(journalFor(config), "deploy", options.who, options.onStep);
  if (!input) {
    runner.report.nothingDone = NO_RELEASE_SENT;
    return { report: runner.finish(false) };
  }
  const socket = proxySettings(config).adminSocket;
  let forced = "";
  let lock: HeldLock | undefined;
  let restore: (() => Promise<void>) | undefined;
  let staged: string | undefined;
  try {
    let verified!: VerifiedRelease;
    await runner.step("verify", async () => {
      assertOnlyRootWrites(config);
      staged = stagingPath(data);
      verified = await readRelease(input, {
        publicPem: config.fleet.releasePublicKey,
        maxBytes: config.appliance.deploy.max_release_bytes,
        stagingFile: staged,
        floor: readFloor(data),
        allowDowngrade: options.allowDowngrade ?? false,
        check: async (manifest, request) => {
          runner.report.release = manifest.version;
          const live = await alreadyLive(config, manifest);
          if (!live) return;
          if (!options.force && !request.force) throw alreadyLiveError(manifest, live);
          forced = `; forced: ${manifest.version} was already live on ${live.color}`;
        },
      });
      const checked = `signature, target ${verified.manifest.target} and sha256 verified (${verified.manifest.size} bytes, commit ${verified.manifest.commit}, sequence ${releaseSequence(verified.manifest)})${forced}`;
      return verified.downgrade ? `${checked}; ${verified.downgrade}` : checked;
    });
    const release = verified.manifest.version;
    await runner.step("lock", () => {
      lock = acquireDeployLock(lockFileFor(config), options.who, release);
      // Again under the lock: a newer release may have gone live while this one was being verified.
      checkNotOlder(verified.manifest, readFloor(data), options.allowDowngrade ?? false);
      return describeLockStep(lock);
    });
    let installed!: InstalledRelease;
    await runner.step("install", () => {
      installed = installRelease(data, verified);
      return installed.dir;
    });
    await runner.step("version", async () => {
      const answer = await recordBinaryAnswer(installed, (binary, args) =>
        runBinary(binary, args, { timeoutMs: 15_000 }),
      );
      const proof = answer.provesColor ? "proves its color on /healthz" : "from before color proofs";
      return `axe-appliance ${answer.version} (commit ${answer.commit}, ${answer.target}); ${proof}`;
    });
    await runner.step("migrate", () =>
      runBinary(installed.binary, ["db", "migrate", "--config", config.dir], {
        timeoutMs: 120_000,
        env: { AXE_CONFIG_DIR: config.dir },
      }),
    );
    let live: Color = "blue";
    let passive: Color = "green";
    await runner.step("start", async () => {
      live = (await proxyStatus(socket)).live;
      passive = otherColor(live);
      runner.report.color = passive;
      const before = pointColor(data, passive, release);
      runner.report.previous = { color: live, ...(before[live] ? { release: before[live]!.version } : {}) };
      restore = () => restoreColor({ config, backend, color: passive, version: before[passive]?.version });
      await backend.restart(passive);
      return `${passive} restarted on ${release}; ${live} stays live`;
    });
    await gateAndSwitch({ config, backend, runner, color: passive, release });
    restore = undefined; // switched: from here on a failure leaves the new color live and the old one warm
    raiseFloor(data, verified.manifest);
    runner.report.receiveToSwitchMs = runner.elapsedMs();
    await finishSwitch({ config, backend, runner, from: live });
    await runner.step("prune", () => {
      const colors = readColors(data);
      const removed = pruneReleases(
        data,
        config.appliance.deploy.keep_releases,
        [colors.blue?.version, colors.green?.version].filter((v): v is string => !!v),
      );
      return removed.length ? `removed ${removed.join(", ")}` : "nothing to remove";
    });
    return { report: runner.finish(true) };
  } catch (error) {
    if ((error as DeployError).code === "RELEASE_ALREADY_LIVE") runner.report.nothingDone = ALREADY_LIVE;
    if (staged) rmSync(staged, { force: true }); // verified but never installed (e.g. refused at the lock)
    if (restore) {
      const undo = restore;
      await runner
        .step(
          "restore",
          async () => (await undo(), "the passive color is back on its previous release; the live color never changed"),
        )
        .catch(() => undefined);
    }
    return { report: runner.finish(false), error: error as Error };
  } finally {
    lock?.release();
  }
}

/** The live color, when it already runs this release (by the proxy's live color and colors.json). */
async function alreadyLive(
  config: Config,
  manifest: Manifest,
): Promise<{ color: Color; standby?: string } | undefined> {
  const live = await proxyStatus(proxySettings(config).adminSocket).then(
    (status) => status.live,
    () => undefined, // no proxy: the start step says so
  );
  if (!live) return undefined;
  const colors = readColors(config.paths.data);
  if (colors[live]?.version !== manifest.version) return undefined;
  const standby = colors[otherColor(live)]?.version;
  return { color: live, ...(standby ? { standby } : {}) };
}

function alreadyLiveError(manifest: Manifest, live: { color: Color; standby?: string }): DeployError {
  const rollback = live.standby
    ? `${otherColor(live.color)} keeps ${live.standby} for rollback`
    : `${otherColor(live.color)} runs no release yet`;
  return new DeployError(
    "RELEASE_ALREADY_LIVE",
    `verify: release ${manifest.version} is already live on ${live.color}; deploying it again would put it on both colors and leave nothing to roll back to (${rollback}); nothing was installed or run`,
    "push a newer release; to deploy this one again on purpose (e.g. to replace a broken standby), push with --force",
  );
}
