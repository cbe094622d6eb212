/**
 * `up --dev` with no config: a development appliance in ./dev-data (or $AXE_DEV_DIR): one
 * customer "dev" with one entity "dev", ports 3710/3711/3712, the embedded Postgres, the child
 * process backend. Created once; an existing directory is reused as it is.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { stringify } from "yaml";

export const DEV_TENANT = "00000000-0000-4000-8000-000000000de0";

export interface DevPorts {
  blue: number;
  green: number;
  proxy: number;
  /** The proxy's loopback /metrics port (default: the proxy's own default, 3714); tests say off. */
  metrics?: number | "off";
}

export function devDir(): string {
  return resolve(process.env.AXE_DEV_DIR || "dev-data");
}

/** Writes customers.yaml and appliance.yaml unless appliance.yaml exists; returns true when it wrote. */
export function ensureDevConfig(dir: string, ports: DevPorts = { blue: 3710, green: 3711, proxy: 3712 }): boolean {
  if (existsSync(join(dir, "appliance.yaml"))) return false;
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const customers = {
    customers: [
      {
        name: "dev",
        domains: ["dev.example"],
        host: "localhost",
        machine: "localhost",
        entra: { tenant_id: DEV_TENANT, scope: "frame.access" },
        entities: [{ name: "dev", domains: ["dev.example"] }],
      },
    ],
  };
  const appliance = {
    customer: "dev",
    frame: {
      ports: { blue: ports.blue, green: ports.green },
      public_url: `http://127.0.0.1:${ports.proxy}`,
      entra_authority: "http://127.0.0.1:9",
    },
    proxy: {
      listen: `127.0.0.1:${ports.proxy}`,
      ...(ports.metrics === undefined
        ? {}
        : { metrics_listen: ports.metrics === "off" ? "off" : `127.0.0.1:${ports.metrics}` }),
    },
    deploy: { service_backend: "child" },
  };
  const header =
    "# Development appliance made by `axe-appliance up --dev`. Not for production: the Entra tenant is a placeholder.\n";
  writeFileSync(join(dir, "customers.yaml"), header + stringify(customers));
  writeFileSync(join(dir, "appliance.yaml"), header + stringify(appliance));
  return true;
}
