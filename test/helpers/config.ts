/**
 * Config directories for tests: a two-customer fleet and an appliance.yaml. Nothing in it binds a
 * fixed port by default: the proxy's TCP /metrics (127.0.0.1:3714 in production) is off unless a
 * test sets `proxy.metrics_listen` (to 127.0.0.1:0 or a free port); tests set the ports they listen on.
 * Nor does it depend on this machine's state: status's disk thresholds are 0, so a full disk is not a yellow status.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { DatabaseTarget } from "../../src/db/connect.ts";
import { writeSecretFile } from "../../src/lib/secret-file.ts";
import { tempDir } from "./tmp.ts";

export const TENANT_AXE = "122fb574-6f3c-4b8e-9d21-5a7c0e4f8b13";
export const TENANT_OTHER = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
export const CLIENT_AXE = "0b7d3f21-94c6-4e1a-8f52-6a1d2c9e7b40";
export const CONNECTOR_CLIENT = "5e9a1c47-2b8d-4f63-a0c1-9d7e3b2f6a18";

export const TEST_CUSTOMERS = {
  ring: ["axe", "other"],
  customers: [
    {
      name: "axe",
      domains: ["axellc.com", "axe-labs.dev"],
      host: "axe.axelabs.ai",
      machine: "axe-macmini",
      entra: {
        tenant_id: TENANT_AXE,
        client_id: CLIENT_AXE,
        app_id_uri: "https://axe.axelabs.ai/frame/mcp",
        scope: "frame.access",
        allowed_clients: [CONNECTOR_CLIENT],
      },
      entities: [
        { name: "axe", domains: ["axellc.com"] },
        { name: "labs", domains: ["axe-labs.dev"] },
      ],
    },
    {
      name: "other",
      domains: ["other.example"],
      host: "other.axelabs.ai",
      machine: "other-macmini",
      entra: { tenant_id: TENANT_OTHER, client_id: "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910", scope: "frame.access" },
    },
  ],
};

export interface ConfigDirOptions {
  appliance?: Record<string, unknown>;
  customers?: unknown;
  /** Use this database (its password goes to a 0600 file) instead of the embedded default. */
  database?: DatabaseTarget;
}

/** Writes customers.yaml and appliance.yaml into a new temp dir and returns its path. */
export function makeConfigDir(options: ConfigDirOptions = {}): string {
  const dir = tempDir("axe-cfg");
  writeFileSync(join(dir, "customers.yaml"), stringify(options.customers ?? TEST_CUSTOMERS));
  const appliance: Record<string, unknown> = { customer: "axe", ...options.appliance };
  appliance.proxy = { metrics_listen: "off", ...(options.appliance?.proxy as Record<string, unknown> | undefined) };
  // how full this machine's disk is must not colour a test's status: thresholds 0 (test/status/disk-check.test.ts sets its own)
  appliance.status = {
    disk_warn_free_percent: 0,
    disk_fail_free_percent: 0,
    ...(options.appliance?.status as Record<string, unknown> | undefined),
  };
  if (options.database) {
    const t = options.database;
    writeSecretFile(join(dir, "secrets", "database.password"), `${t.password ?? ""}\n`);
    appliance.database = {
      url: `postgres://${t.user}@${encodeURIComponent(t.host)}:${t.port}/${t.database}`,
      password_file: "database.password",
    };
  }
  writeFileSync(join(dir, "appliance.yaml"), stringify(appliance));
  return dir;
}
