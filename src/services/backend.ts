/**
 * How proxy, blue and green are kept alive: one interface, three backends (launchd on macOS,
 * systemd on Linux, plain child processes for `up` and tests). The deploy receiver only ever
 * asks a backend to restart a color and to say whether it runs.
 */
import { join } from "node:path";
import type { Config } from "../config/load.ts";
import { readColors } from "../deploy/colors.ts";
import { findRelease } from "../deploy/releases.ts";
import type { Color } from "../lib/colors.ts";
import { LABEL_PREFIX, releaseVersion, selfCommand } from "../lib/version.ts";

export const SERVICES = ["proxy", "blue", "green"] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface ServiceStatus {
  name: ServiceName;
  running: boolean;
  pid?: number;
  /** The release the service was started on, when the backend knows. */
  release?: string;
}

export interface ServiceBackend {
  readonly kind: "launchd" | "systemd" | "child";
  start(name: ServiceName): Promise<void>;
  stop(name: ServiceName): Promise<void>;
  /** Stops and starts the service on the release its color now points at. */
  restart(name: ServiceName): Promise<void>;
  status(name: ServiceName): Promise<ServiceStatus>;
}

/** What to run for a service: program, arguments, environment, log file. */
export interface ServiceSpec {
  name: ServiceName;
  /** launchd label / systemd unit stem, e.g. ai.axelabs.axe.green. */
  label: string;
  program: string;
  args: string[];
  env: Record<string, string>;
  release: string;
  logFile: string;
}

/**
 * The proxy's environment besides AXE_CONFIG_DIR, the same under launchd, systemd and `up`.
 * JavaScriptCore sizes its heap for a 128 MB machine, so it collects sooner under load and the
 * proxy's peak RSS stays lower at the same CPU per request (figures: decision 41,
 * docs/performance.md). Bun reads JSC options only at start, so it cannot be set from inside the process.
 */
export const PROXY_ENV: Readonly<Record<string, string>> = { BUN_JSC_forceRAMSize: String(128 * 1024 * 1024) };

/**
 * The command a service runs now. A color runs the release colors.json points it at, else this
 * binary; the proxy runs this binary (it is restarted only by an operator, never by a deploy).
 */
export function serviceSpec(config: Config, name: ServiceName, self = selfCommand()): ServiceSpec {
  const logFile = join(config.paths.data, "logs", `${name}.log`);
  const base = { name, label: `${LABEL_PREFIX}.${name}`, logFile };
  const env = { AXE_CONFIG_DIR: config.dir };
  if (name === "proxy") {
    return {
      ...base,
      program: self[0]!,
      args: [...self.slice(1), "proxy", "run", "--config", config.dir],
      env: { ...env, ...PROXY_ENV },
      release: releaseVersion(),
    };
  }
  const version = readColors(config.paths.data)[name as Color]?.version;
  const installed = version ? findRelease(config.paths.data, version) : undefined;
  const command = installed ? [installed.binary] : self;
  const release = installed?.version ?? releaseVersion();
  const port = String(config.appliance.frame.ports[name as Color]);
  return {
    ...base,
    program: command[0]!,
    args: [...command.slice(1), "serve", "--color", name, "--port", port, "--config", config.dir],
    env: { ...env, AXE_RELEASE: release },
    release,
  };
}

/** The backend appliance.yaml names, else the platform's (launchd on macOS, systemd on Linux). */
export function defaultBackendKind(config: Config): ServiceBackend["kind"] {
  return config.appliance.deploy.service_backend ?? (process.platform === "darwin" ? "launchd" : "systemd");
}
