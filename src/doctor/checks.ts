/**
 * What `axe-appliance doctor` looks at: config, the programs we need, ports, secret file modes.
 * Every check reports OK or FAIL, and each FAIL carries the fix.
 */

import { existsSync, readdirSync, statSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { type Config, loadConfig, resolveConfigDir } from "../config/load.ts";
import { frameAccount } from "../config/run-as.ts";
import { DUMP_TOOLS, findPostgresTools, SERVER_TOOLS } from "../db/postgres-tools.ts";
import { urlHost } from "../lib/address.ts";
import type { AppError } from "../lib/errors.ts";
import { instanceId } from "../lib/instance.ts";
import { describeExit, lastLines, ProgramStartError, runProgram } from "../lib/program.ts";
import { defaultBackendKind } from "../services/backend.ts";

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
  results.push(await resticCheck());
  if (config) {
    results.push(backendCheck(config));
    results.push(...(await portChecks(config)));
    results.push(...secretChecks(config));
    results.push(await runAsCheck(config));
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

const RESTIC_VERSION_DEADLINE_MS = 5000;

async function resticCheck(): Promise<CheckResult> {
  const name = "restic";
  const install = "`brew install restic` on macOS, `apt-get install restic` on Debian";
  const exit = await runProgram(["restic", "version"], {
    deadlineMs: RESTIC_VERSION_DEADLINE_MS,
    deadlineSignal: "SIGTERM",
    killAfterMs: 1000,
  }).catch((error: unknown) => {
    if (error instanceof ProgramStartError) return undefined;
    throw error;
  });
  if (!exit) return { name, ok: false, detail: "restic not found on PATH", fix: install };
  if (exit.code === 0) return { name, ok: true, detail: exit.stdout.trim().split("\n")[0]! };
  const said = lastLines(exit.stderr || exit.stdout, 1);
  return {
    name,
    ok: false,
    detail: `restic version ${describeExit(exit, RESTIC_VERSION_DEADLINE_MS)}${said ? `: ${said}` : ""}`,
    fix: `run \`restic version\` to see what is wrong; reinstall: ${install}`,
  };
}

/** The receiver restarts colors through this backend: one that cannot work here fails every deploy at `start`. */
function backendCheck(config: Config): CheckResult {
  const kind = defaultBackendKind(config);
  const set = config.appliance.deploy.service_backend ? "deploy.service_backend" : "the platform's default";
  const name = `service backend (${kind})`;
  const useChild =
    "for an appliance run by `axe-appliance up` (a test install), set `deploy.service_backend: child` in appliance.yaml";
  if (kind === "launchd" && process.platform !== "darwin")
    return { name, ok: false, detail: `${set} is launchd, and this is ${process.platform}`, fix: useChild };
  if (kind === "systemd" && !existsSync("/run/systemd/system"))
    return {
      name,
      ok: false,
      detail: `${set} is systemd, but this machine was not booted with systemd (no /run/systemd/system): every deploy would fail at start`,
      fix: `${useChild}; on a real machine, run install.sh without --no-services`,
    };
  if (kind === "child")
    return { name, ok: true, detail: `colors are processes with PID files in ${config.paths.run}/services (\`up\`)` };
  return { name, ok: true, detail: `${kind} restarts blue and green` };
}

/** A port is fine when free, or when this appliance (same install) answers /healthz on it. */
async function portChecks(config: Config): Promise<CheckResult[]> {
  const { frame, proxy } = config.appliance;
  const [proxyHost, proxyPort] = splitHostPort(proxy.listen);
  const ports: Array<[string, string, number]> = [
    ["proxy", proxyHost, proxyPort],
    ["frame blue", frame.bind, frame.ports.blue],
    ["frame green", frame.bind, frame.ports.green],
  ];
  const ours = instanceId(config.paths.data);
  return Promise.all(
    ports.map(async ([name, host, port]): Promise<CheckResult> => {
      const label = `port ${port} (${name})`;
      if (!(await isListening(host, port))) return { name: label, ok: true, detail: `free on ${host}` };
      const answer = await applianceAnswer(host, port);
      if (answer && (answer.instance === undefined || answer.instance === ours))
        return { name: label, ok: true, detail: "in use by this axe-appliance" };
      if (answer)
        return {
          name: label,
          ok: false,
          detail: `in use on ${host} by another axe-appliance (${answer.service}, another install than ${config.paths.data})`,
          fix: `stop that appliance, or give this one other ports in ${config.dir}/appliance.yaml (install.sh: --proxy-port/--blue-port/--green-port on a first install)`,
        };
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
  // with frame.run_as, its group may pass through (0710) to the files keys init gave it (decision 79)
  const runAs = config.appliance.frame.run_as;
  if (dirMode & (runAs ? 0o067 : 0o077))
    results.push({
      name: "secrets dir",
      ok: false,
      detail: `${dir} is mode ${dirMode.toString(8)}`,
      fix: runAs ? `chmod 710 ${dir}; sudo axe-appliance keys init` : `chmod 700 ${dir}`,
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

/** Whether blue and green run as frame.run_as, and it holds the files they read (decision 79). */
async function runAsCheck(config: Config): Promise<CheckResult> {
  const name = "colors' account";
  const runAs = config.appliance.frame.run_as;
  if (!runAs)
    return {
      name,
      ok: true,
      detail: "blue and green run as root: frame.run_as is not set (operations.md, Install a machine)",
    };
  let account: Awaited<ReturnType<typeof frameAccount>>;
  try {
    account = await frameAccount(config);
  } catch (error) {
    const { message, hint } = error as AppError;
    return { name, ok: false, detail: message, ...(hint ? { fix: hint } : {}) };
  }
  if (!account) return { name, ok: true, detail: `blue and green run as ${runAs} (not checked: doctor is not root)` };
  const { frameSecrets } = await import("../frame/run-as.ts");
  const { anchorPlace } = await import("../frame/store/audit-anchor-format.ts");
  const notTheirs = [...frameSecrets(config), anchorPlace(config).file].filter(
    (file) => existsSync(file) && statSync(file).uid !== account.uid,
  );
  if (notTheirs.length)
    return {
      name,
      ok: false,
      detail: `blue and green run as ${runAs}, which does not own ${notTheirs.join(", ")}`,
      fix: "sudo axe-appliance keys init (it hands them over)",
    };
  return { name, ok: true, detail: `blue and green run as ${runAs}, which holds the files they read` };
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

/** What an axe-appliance process on the port says about itself (its service and install), or undefined. */
async function applianceAnswer(
  host: string,
  port: number,
): Promise<{ service: string; instance?: string } | undefined> {
  try {
    const response = await fetch(`http://${urlHost(host)}:${port}/healthz`, {
      signal: AbortSignal.timeout(1000),
    });
    const body = (await response.json()) as { service?: unknown; instance?: unknown };
    if (typeof body.service !== "string" || !body.service.startsWith("axe-")) return undefined;
    // a release from before instances says nothing about its install: taken as ours, as before
    return { service: body.service, ...(typeof body.instance === "string" ? { instance: body.instance } : {}) };
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
