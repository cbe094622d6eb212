/**
 * Signs that a data directory is a production one: the proxy's state file, or a launchd plist or
 * systemd unit of ours that names the directory. `serve --no-auth` refuses to start on such a
 * directory, because a no-auth color behind the proxy would give admin to the public URL.
 *
 * @example
 * const found = productionFootprint(config); // [] on a developer's fresh directory
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultUnitDir } from "../backup/schedule.ts";
import type { Config } from "../config/load.ts";
import { LABEL_PREFIX } from "../lib/version.ts";
import { proxySettings } from "../proxy/settings.ts";

/** Where launchd and systemd keep the units `services install` writes. */
export const UNIT_DIRS = [defaultUnitDir("launchd"), defaultUnitDir("systemd")];

/** The files found: the proxy state file, then each installed unit whose text names `config.paths.data`. */
export function productionFootprint(config: Config, unitDirs: readonly string[] = UNIT_DIRS): string[] {
  const found: string[] = [];
  const state = proxySettings(config).stateFile;
  if (existsSync(state)) found.push(state);
  const dataDir = `${config.paths.data.replace(/\/+$/, "")}/`;
  for (const dir of unitDirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.startsWith(`${LABEL_PREFIX}.`));
    } catch {
      continue; // no such directory on this platform
    }
    for (const name of names.sort()) {
      const path = join(dir, name);
      try {
        if (readFileSync(path, "utf8").includes(dataDir)) found.push(path);
      } catch {
        // unreadable: not ours to judge
      }
    }
  }
  return found;
}
