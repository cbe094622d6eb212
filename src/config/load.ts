/**
 * Finds the config directory and loads both files into one checked Config.
 *
 * @example
 * const config = loadConfig({ dir: flags.config });
 * config.customer.entra.tenant_id; config.paths.data;
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { ConfigError } from "../lib/errors.ts";
import { type ApplianceFile, readApplianceFile } from "./appliance.ts";
import { type Customer, type Fleet, loadFleet } from "./customers.ts";

export const DEFAULT_CONFIG_DIR = "/opt/axe/config";

export interface Config {
  dir: string;
  fleet: Fleet;
  appliance: ApplianceFile;
  /** This machine's customer. */
  customer: Customer;
  paths: { data: string; secrets: string; run: string; state: string };
  /** The exact MCP URL, no trailing slash: the resource of the protected resource metadata. */
  mcpUrl: string;
}

/** --config DIR, else $AXE_CONFIG_DIR, else /opt/axe/config when it exists, else the current directory. */
export function resolveConfigDir(flag?: string): string {
  if (flag) return resolve(flag);
  if (process.env.AXE_CONFIG_DIR) return resolve(process.env.AXE_CONFIG_DIR);
  if (existsSync(join(DEFAULT_CONFIG_DIR, "appliance.yaml"))) return DEFAULT_CONFIG_DIR;
  return process.cwd();
}

export function loadConfig(options: { dir?: string } = {}): Config {
  const dir = resolveConfigDir(options.dir);
  const applianceFile = join(dir, "appliance.yaml");
  if (!existsSync(applianceFile))
    throw new ConfigError(
      "CONFIG_MISSING",
      `${applianceFile}: not found; this directory is not an appliance config`,
      "pass --config DIR, run install.sh, or try `axe-appliance up --dev` for a development appliance",
    );
  const fleet = loadFleet(join(dir, "customers.yaml"));
  const { source, appliance } = readApplianceFile(applianceFile);
  const customer = fleet.customers.find((c) => c.name === appliance.customer);
  if (!customer)
    throw new ConfigError(
      "CONFIG_INVALID",
      source.problem(
        ["customer"],
        `"${appliance.customer}" is not a customer in customers.yaml; expected one of ${fleet.customers.map((c) => c.name).join(", ")}`,
      ),
    );
  if (customer.entra.tenant_id === "TBD")
    throw new ConfigError(
      "CONFIG_INVALID",
      `${fleet.file}: customers.${customer.name}.entra.tenant_id: is TBD, but ${customer.name} is this machine's customer (${source.locate(["customer"])}); expected its Entra tenant id`,
      "find it in the Entra admin center under Overview > Tenant ID",
    );
  const runAs = appliance.frame.run_as;
  if (runAs && !appliance.database.url && runAs !== appliance.database.embedded_run_as)
    throw new ConfigError(
      "CONFIG_INVALID",
      source.problem(
        ["frame", "run_as"],
        `is ${runAs}, but the embedded cluster runs as ${appliance.database.embedded_run_as} (database.embedded_run_as); a color starts and restarts that cluster, so it must run as the cluster's account`,
      ),
    );
  const at = (p: string) => (isAbsolute(p) ? p : join(dir, p));
  const data = at(appliance.data_dir);
  const base = (appliance.frame.public_url ?? `https://${customer.host}`).replace(/\/+$/, "");
  return {
    dir,
    fleet,
    appliance,
    customer,
    paths: { data, secrets: at(appliance.secrets_dir), run: join(data, "run"), state: join(data, "state") },
    mcpUrl: `${base}/frame/mcp`,
  };
}

/** A secret file's path: absolute as given, else under the secrets directory. */
export function secretPath(config: Config, name: string): string {
  return isAbsolute(name) ? name : join(config.paths.secrets, name);
}
