/**
 * The systemd backend (Linux): one unit per service, ai.axelabs.axe.<name>.service, kept alive
 * by systemd (Restart=always). Restarting a color is `systemctl restart`; the unit reads the
 * release from the current/<color> link and env file, so it never changes across deploys.
 */
import type { Config } from "../config/load.ts";
import { LABEL_PREFIX } from "../lib/version.ts";
import { SERVICES, type ServiceBackend, type ServiceName, type ServiceStatus } from "./backend.ts";
import { askServiceManager, tellServiceManager } from "./service-manager.ts";
import { type UnitOptions, unitCommand } from "./unit-commands.ts";

const quote = (arg: string) =>
  /^[\w@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;

/** The text of the unit file for `name`. */
export function systemdUnit(config: Config, name: ServiceName, options: UnitOptions = {}): string {
  const unit = unitCommand(config, name, options);
  return [
    "[Unit]",
    `Description=${unit.description}`,
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    ...(unit.user ? [`User=${unit.user}`] : []),
    ...Object.entries(unit.env).map(([k, v]) => `Environment=${k}=${quote(v)}`),
    ...(unit.envFile ? [`EnvironmentFile=-${unit.envFile}`] : []),
    `ExecStart=${[unit.program, ...unit.args].map(quote).join(" ")}`,
    "Restart=always",
    "RestartSec=2",
    "KillSignal=SIGTERM",
    // A color may be the one that started the embedded Postgres, which then lives in its control
    // group; the default (kill the whole group) would stop the live color's database when a deploy
    // restarts the passive one. The color's own stop leaves it to whoever still uses it (decision 78).
    ...(name === "proxy" ? [] : ["KillMode=process"]),
    "TimeoutStopSec=45",
    `StandardOutput=append:${unit.logFile}`,
    `StandardError=append:${unit.logFile}`,
    "NoNewPrivileges=yes",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** Unit file names and texts for every service. */
export function systemdUnits(config: Config, options: UnitOptions = {}): Array<{ file: string; text: string }> {
  return SERVICES.map((name) => ({
    file: `${LABEL_PREFIX}.${name}.service`,
    text: systemdUnit(config, name, options),
  }));
}

export class SystemdBackend implements ServiceBackend {
  readonly kind = "systemd" as const;
  constructor(private readonly systemctl = "systemctl") {}

  private must(verb: string, name: ServiceName): Promise<void> {
    const unit = `${LABEL_PREFIX}.${name}.service`;
    return tellServiceManager([this.systemctl, verb, unit], `see \`journalctl -u ${unit}\``);
  }

  async start(name: ServiceName) {
    await this.must("start", name);
  }
  async stop(name: ServiceName) {
    await this.must("stop", name);
  }
  async restart(name: ServiceName) {
    await this.must("restart", name);
  }

  async status(name: ServiceName): Promise<ServiceStatus> {
    const result = await askServiceManager([
      this.systemctl,
      "show",
      "--property=MainPID,ActiveState",
      `${LABEL_PREFIX}.${name}.service`,
    ]);
    const pid = Number(/MainPID=(\d+)/.exec(result.out)?.[1] ?? 0);
    const active = /ActiveState=active/.test(result.out);
    return { name, running: active && pid > 0, ...(pid > 0 ? { pid } : {}) };
  }
}
