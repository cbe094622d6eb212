/**
 * What a receiver or rollback running as root trusts must be writable by root alone: the config
 * that pins the release key and names data_dir (appliance.yaml, customers.yaml, their directory),
 * and data_dir's releases/, current/, state/ and run/, each with every directory above it. A test
 * install has the deploy user own data_dir (it runs the receiver itself, without sudo); made a real
 * install later, that account could put its own binary where root runs it, or its own key.
 */
import { lstatSync, realpathSync, type Stats } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../config/load.ts";
import { DeployError } from "../lib/errors.ts";

/** Throws DEPLOY_PATH_UNSAFE naming the first such path another account could write; nothing when not root. */
export function assertOnlyRootWrites(config: Config): void {
  if (process.getuid?.() !== 0) return;
  const data = config.paths.data;
  const trusted = [
    join(config.dir, "appliance.yaml"),
    join(config.dir, "customers.yaml"),
    ...["releases", "current", "state", "run"].map((name) => join(data, name)),
  ];
  const seen = new Set<string>();
  for (const path of trusted) {
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      continue; // not there yet: made by root, in a directory checked below
    }
    for (let at = real; !seen.has(at); at = dirname(at)) {
      seen.add(at);
      const why = othersMayWrite(lstatSync(at));
      if (why)
        throw new DeployError(
          "DEPLOY_PATH_UNSAFE",
          `${at} ${why}${at === real ? "" : ` (it holds ${path})`}; this run as root trusts it, so nothing was installed or run`,
          `make it root's alone: \`sudo chown root ${at} && sudo chmod go-w ${at}\`; after a test install that gave the deploy user the prefix, also \`sudo chown -R root\` data_dir's releases, current, state and run (never its postgres cluster)`,
        );
      if (dirname(at) === at) break;
    }
  }
}

function othersMayWrite(stat: Stats): string | undefined {
  if (stat.uid !== 0) return `belongs to uid ${stat.uid}, not root`;
  const sticky = stat.isDirectory() && (stat.mode & 0o1000) !== 0; // like /tmp: others cannot move root's entries
  if (stat.mode & 0o022 && !sticky) return `has mode ${(stat.mode & 0o777).toString(8)}: others may write it`;
  return undefined;
}
