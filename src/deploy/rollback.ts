/**
 * `deploy rollback`: make the warm standby live again. When the standby still runs its release,
 * this is a gate and a switch (seconds); when it is down, the previous release is restarted on it
 * first. Same steps, journal and report as a deploy.
 */
import type { Config } from "../config/load.ts";
import { type Color, otherColor } from "../lib/colors.ts";
import { DeployError } from "../lib/errors.ts";
import { proxyStatus } from "../proxy/admin-client.ts";
import { proxySettings } from "../proxy/settings.ts";
import type { ColorRunner } from "./color-runner.ts";
import { pointColor, readColors } from "./colors.ts";
import { gateKey, waitForHealth } from "./gate.ts";
import { acquireDeployLock, describeLockStep, type HeldLock } from "./lock.ts";
import { journalFor, lockFileFor, type RunOutcome } from "./receive.ts";
import { findRelease } from "./releases.ts";
import { assertOnlyRootWrites } from "./root-paths.ts";
import { type StepReport, StepRunner } from "./steps.ts";
import { colorUrl, finishSwitch, gateAndSwitch } from "./switch.ts";

export async function rollback(options: {
  config: Config;
  who: string;
  backend: ColorRunner;
  /** Hears each step as it ends. */
  onStep?: (step: StepReport) => void;
}): Promise<RunOutcome> {
  const { config, backend } = options;
  const runner = new StepRunner(journalFor(config), "rollback", options.who, options.onStep);
  let lock: HeldLock | undefined;
  try {
    let live: Color = "blue";
    let standby: Color = "green";
    let release = "";
    await runner.step("lock", () => {
      assertOnlyRootWrites(config); // the standby's binary runs as root
      lock = acquireDeployLock(lockFileFor(config), options.who, "rollback");
      return describeLockStep(lock);
    });
    await runner.step("standby", async () => {
      live = (await proxyStatus(proxySettings(config).adminSocket)).live;
      standby = otherColor(live);
      const version = readColors(config.paths.data)[standby]?.version;
      if (!version || !findRelease(config.paths.data, version))
        throw new DeployError(
          "NO_STANDBY",
          `${standby} has no installed release to roll back to`,
          "push the release you want with `axe-appliance deploy push`",
        );
      release = version;
      runner.report.release = version;
      runner.report.color = standby;
      runner.report.previous = {
        color: live,
        ...(readColors(config.paths.data)[live] ? { release: readColors(config.paths.data)[live]!.version } : {}),
      };
      const colorKey = gateKey(config, standby);
      const warm = await waitForHealth({
        url: colorUrl(config, standby),
        color: standby,
        release: version,
        timeoutMs: 1500,
        ...(colorKey ? { colorKey } : {}),
      }).then(
        () => true,
        () => false,
      );
      if (warm) return `${standby} is warm on ${version}`;
      pointColor(config.paths.data, standby, version); // the link too, in case it had moved
      await backend.restart(standby);
      return `${standby} was not running ${version}; restarted it`;
    });
    await gateAndSwitch({ config, backend, runner, color: standby, release });
    runner.report.receiveToSwitchMs = undefined;
    await finishSwitch({ config, backend, runner, from: live });
    return { report: runner.finish(true) };
  } catch (error) {
    return { report: runner.finish(false), error: error as Error };
  } finally {
    lock?.release();
  }
}
