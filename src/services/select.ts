/** Picks the service backend appliance.yaml names (deploy.service_backend), else the platform's. */
import type { Config } from "../config/load.ts";
import { defaultBackendKind, type ServiceBackend } from "./backend.ts";
import { ChildBackend } from "./child.ts";
import { LaunchdBackend } from "./launchd.ts";
import { SystemdBackend } from "./systemd.ts";

export function serviceBackend(config: Config): ServiceBackend {
  switch (defaultBackendKind(config)) {
    case "child":
      return new ChildBackend(config);
    case "launchd":
      return new LaunchdBackend();
    case "systemd":
      return new SystemdBackend();
  }
}
