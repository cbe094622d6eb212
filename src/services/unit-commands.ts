/** The command lines launchd and systemd units run, from the stable paths deploy/colors.ts keeps pointed. */
import { join } from "node:path";
import type { Config } from "../config/load.ts";
import { currentEnvFile, currentLink } from "../deploy/colors.ts";
import type { Color } from "../lib/colors.ts";
import { LABEL_PREFIX } from "../lib/version.ts";
import { PROXY_ENV, type ServiceName } from "./backend.ts";

export interface UnitCommand {
  name: ServiceName;
  label: string;
  description: string;
  /** The binary the unit runs (a color's is the current/<color> link). */
  program: string;
  args: string[];
  /** File with AXE_RELEASE=... (colors only). */
  envFile?: string;
  env: Record<string, string>;
  logFile: string;
  /** The account it runs as (systemd User=, launchd UserName); none: root. */
  user?: string;
}

export interface UnitOptions {
  /** The installed appliance binary that runs the proxy (default /opt/axe/bin/axe-appliance). */
  binary?: string;
  /** The account every service runs as (systemd User=, launchd UserName); default: blue and green as frame.run_as, the proxy as root. */
  user?: string;
}

export function unitCommand(config: Config, name: ServiceName, options: UnitOptions = {}): UnitCommand {
  const base = {
    name,
    label: `${LABEL_PREFIX}.${name}`,
    env: { AXE_CONFIG_DIR: config.dir },
    logFile: join(config.paths.data, "logs", `${name}.log`),
  };
  if (name === "proxy")
    return {
      ...base,
      ...(options.user ? { user: options.user } : {}),
      env: { ...base.env, ...PROXY_ENV },
      description: "axe-appliance blue/green proxy",
      program: options.binary ?? "/opt/axe/bin/axe-appliance",
      args: ["proxy", "run", "--config", config.dir],
    };
  const color = name as Color;
  const user = options.user ?? config.appliance.frame.run_as;
  return {
    ...base,
    ...(user ? { user } : {}),
    description: `axe-appliance frame (${color})`,
    program: join(currentLink(config.paths.data, color), "axe-appliance"),
    args: ["serve", "--color", color, "--port", String(config.appliance.frame.ports[color]), "--config", config.dir],
    envFile: currentEnvFile(config.paths.data, color),
  };
}
