/**
 * What `axe-appliance doctor` looks at: config, the programs we need, ports, secret file modes.
 * Every check reports OK or FAIL, and each FAIL carries the fix.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { type Config, loadConfig, resolveConfigDir } from "../config/load.ts";
import { DUMP_TOOLS, findPostgresTools, SERVER_TOOLS } from "../db/postgres-tools.ts";
import type { AppError } from "../lib/errors.ts";

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export async function runChecks(configDir?: string): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  let config: Config | undefined;
  try {
    config = loadConfig({ dir: configDir });
    results.push({
      name: "config",
      ok: true,
      detail: `${config.dir}: customer ${config.customer.name}, MCP URL ${config.mcpUrl}`,
    });
  } catch (error) {
    results.push({
      name: "config",
      ok: false,
      detail: describe(error),
      fix: (error as AppError).hint ?? `fix the files in ${resolveConfigDir(configDir)}`,
    });
  }
  results.push(toolCheck("postgres server", SERVER_TOOLS, !config?.appliance.database.url));
  results.push(toolCheck("postgres client tools", DUMP_TOOLS, true));
  results.push(resticCheck());
  if (config) {
    results.push(...(await portChecks(config)));
    results.push(...secretChecks(config));
  }
  return results;
}

function toolCheck(name: string, tools: readonly string[], needed: boolean): CheckResult {
  try {
    return { name, ok: true, detail: `${tools.join(", ")} in ${findPostgresTools(tools)}` };
  } catch (error) {
    if (!needed) return { name, ok: true, detail: "not needed: database.url is set" };
    return { name, ok: false, detail: describe(error), fix: (error as AppError).hint };
  }
}

function resticCheck(): CheckResult {
  const result = spawnSync("restic", ["version"], { encoding: "utf8", timeout: 5000 });
  if (result.status === 0) return { name: "restic", ok: true, detail: result.stdout.trim().split("\n")[0]! };
  return {
    name: "restic",
    ok: false,
    detail: "restic not found on PATH",
    fix: "`brew install restic` on macOS, `apt-get install restic` on Debian",
  };
}

/** A port is fine when free, or when an axe-appliance process answers /healthz on it. */
async function portChecks(config: Config): Promise<CheckResult[]> {
  const { frame, proxy } = config.appliance;
  const [proxyHost, proxyPort] = splitHostPort(proxy.listen);
  const ports: Array<[string, string, number]> = [
    ["proxy", proxyHost, proxyPort],
    ["frame blue", frame.bind, frame.ports.blue],
    ["frame green", frame.bind, frame.ports.green],
  ];
  return Promise.all(
    ports.map(async ([name, host, port]): Promise<CheckResult> => {
      const label = `port ${port} (${name})`;
      if (!(await isListening(host, port))) return { name: label, ok: true, detail: `free on ${host}` };
      if (await answersAsAppliance(host, port)) return { name: label, ok: true, detail: "in use by axe-appliance" };
      return {
        name: label,
        ok: false,
        detail: `in use on ${host} by another program`,
        fix: `find it with \`lsof -nP -iTCP:${port} -sTCP:LISTEN\` and stop it, or change the port in appliance.yaml`,
      };
    }),
  );
}

function secretChecks(config: Config): CheckResult[] {
  const dir = config.paths.secrets;
  if (!existsSync(dir))
    return [{ name: "secrets", ok: true, detail: `${dir} not created yet (keys init and backup init create it)` }];
  const results: CheckResult[] = [];
  const dirMode = statSync(dir).mode & 0o777;
  if (dirMode & 0o077)
    results.push({
      name: "secrets dir",
      ok: false,
      detail: `${dir} is mode ${dirMode.toString(8)}`,
      fix: `chmod 700 ${dir}`,
    });
  const wide = readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile() && (statSync(path).mode & 0o077) !== 0);
  if (wide.length)
    results.push({
      name: "secret file modes",
      ok: false,
      detail: `readable by others: ${wide.join(", ")}`,
      fix: `chmod 600 ${wide.join(" ")}`,
    });
  else results.push({ name: "secret file modes", ok: true, detail: `every file in ${dir} is 0600` });
  return results;
}

export function splitHostPort(listen: string): [string, number] {
  const at = listen.lastIndexOf(":");
  return [listen.slice(0, at).replace(/^\[|\]$/g, ""), Number(listen.slice(at + 1))];
}

function isListening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port, timeout: 500 });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => (socket.destroy(), resolve(false)));
  });
}

async function answersAsAppliance(host: string, port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${port}/healthz`, {
      signal: AbortSignal.timeout(1000),
    });
    const body = (await response.json()) as { service?: string };
    return typeof body.service === "string" && body.service.startsWith("axe-");
  } catch {
    return false;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
