/**
 * The launchd backend (macOS): one LaunchDaemon plist per service, ai.axelabs.axe.<name>.plist,
 * with KeepAlive. Restarting a color is `launchctl kickstart -k system/<label>`. launchd has no
 * environment file, so a color runs through /bin/sh, which reads current/<color>.env and execs
 * the binary behind the current/<color> link.
 */
import type { Config } from "../config/load.ts";
import { LABEL_PREFIX } from "../lib/version.ts";
import { SERVICES, type ServiceBackend, type ServiceName, type ServiceStatus } from "./backend.ts";
import { askServiceManager, tellServiceManager } from "./service-manager.ts";
import { type UnitOptions, unitCommand } from "./unit-commands.ts";

const xml = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

/** The text of the plist for `name`. */
export function launchdPlist(config: Config, name: ServiceName, options: UnitOptions = {}): string {
  const unit = unitCommand(config, name, options);
  const argv = unit.envFile
    ? [
        "/bin/sh",
        "-c",
        'set -a; . "$1"; set +a; shift 2; exec "$0" "$@"',
        unit.program,
        unit.envFile,
        "--",
        ...unit.args,
      ]
    : [unit.program, ...unit.args];
  const strings = (items: string[]) => items.map((s) => `\t\t<string>${xml(s)}</string>`).join("\n");
  const env = Object.entries(unit.env)
    .map(([k, v]) => `\t\t<key>${xml(k)}</key>\n\t\t<string>${xml(v)}</string>`)
    .join("\n");
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
\t<key>Label</key>
\t<string>${xml(unit.label)}</string>
\t<key>ProgramArguments</key>
\t<array>
${strings(argv)}
\t</array>
\t<key>EnvironmentVariables</key>
\t<dict>
${env}
\t</dict>
${unit.user ? `\t<key>UserName</key>\n\t<string>${xml(unit.user)}</string>\n` : ""}\t<key>RunAtLoad</key>
\t<true/>
\t<key>KeepAlive</key>
\t<true/>
\t<key>ThrottleInterval</key>
\t<integer>5</integer>
\t<key>ExitTimeOut</key>
\t<integer>45</integer>
\t<key>StandardOutPath</key>
\t<string>${xml(unit.logFile)}</string>
\t<key>StandardErrorPath</key>
\t<string>${xml(unit.logFile)}</string>
</dict>
</plist>
`;
}

/** Plist file names and texts for every service. */
export function launchdPlists(config: Config, options: UnitOptions = {}): Array<{ file: string; text: string }> {
  return SERVICES.map((name) => ({ file: `${LABEL_PREFIX}.${name}.plist`, text: launchdPlist(config, name, options) }));
}

export class LaunchdBackend implements ServiceBackend {
  readonly kind = "launchd" as const;
  constructor(private readonly domain = "system") {}

  private target(name: ServiceName): string {
    return `${this.domain}/${LABEL_PREFIX}.${name}`;
  }

  private must(args: string[]): Promise<void> {
    return tellServiceManager(
      ["launchctl", ...args],
      "see `launchctl print` for the service and its log under data_dir/logs",
    );
  }

  async start(name: ServiceName) {
    await this.must(["kickstart", this.target(name)]);
  }
  async stop(name: ServiceName) {
    await this.must(["kill", "SIGTERM", this.target(name)]);
  }
  async restart(name: ServiceName) {
    await this.must(["kickstart", "-k", this.target(name)]);
  }

  async status(name: ServiceName): Promise<ServiceStatus> {
    const result = await askServiceManager(["launchctl", "print", this.target(name)]);
    const pid = Number(/\bpid = (\d+)/.exec(result.out)?.[1] ?? 0);
    return { name, running: result.ok && pid > 0, ...(pid > 0 ? { pid } : {}) };
  }
}
