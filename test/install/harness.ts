/**
 * For install.sh tests: the compiled binary (built once per run, with its SHA256SUMS), a fleet
 * file, and the real install.sh run as a child process.
 */
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { stringify } from "yaml";
import { compiledBinary } from "../helpers/binary.ts";
import { REPO } from "../helpers/cli.ts";
import { TEST_CUSTOMERS } from "../helpers/config.ts";
import type { TestDatabase } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

export const INSTALL_SH = join(REPO, "install.sh");

let built: { dir: string; binary: string; sha256: string } | undefined;

/** dist/axe-appliance and dist/SHA256SUMS, as `npm run build` writes them, from the run's compiled binary. */
export function release(): { dir: string; binary: string; sha256: string } {
  if (built && existsSync(built.binary)) return built;
  const { path, sha256 } = compiledBinary();
  const dir = tempDir("axe-inst-dist", { scope: "run" }); // every install test file uses it
  const binary = join(dir, "axe-appliance");
  copyFileSync(path, binary); // install.sh may change its mode; the shared binary stays as built
  writeFileSync(join(dir, "SHA256SUMS"), `${sha256}  axe-appliance\n`);
  built = { dir, binary, sha256 };
  return built;
}

/** The test fleet with axe alone in the backup ring (no peer to reach over ssh). */
export function fleetFile(): string {
  const file = join(tempDir("axe-inst-fleet"), "customers.yaml");
  writeFileSync(file, stringify({ ...TEST_CUSTOMERS, ring: ["axe"] }));
  return file;
}

export interface InstallRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runInstall(
  args: string[],
  options: { script?: string; env?: Record<string, string>; user?: string } = {},
): Promise<InstallRun> {
  const command = ["bash", options.script ?? INSTALL_SH, ...args];
  const argv = options.user
    ? ["setpriv", `--reuid=${options.user}`, `--regid=${options.user}`, "--clear-groups", ...command]
    : command;
  const child = Bun.spawn(argv, {
    cwd: tempDir("axe-inst-cwd"),
    env: { ...process.env, AXE_CONFIG_DIR: "", ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}

/** Every path under `dir` with its type, mode and content hash (or link target): a tree to compare. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (path: string) => {
    const stat = lstatSync(path);
    const key = relative(dir, path) || ".";
    const mode = (stat.mode & 0o7777).toString(8);
    if (stat.isSymbolicLink()) out[key] = `link -> ${readlinkSync(path)}`;
    else if (stat.isDirectory()) {
      out[key] = `dir ${mode}`;
      for (const name of readdirSync(path)) walk(join(path, name));
    } else out[key] = `file ${mode} ${createHash("sha256").update(readFileSync(path)).digest("hex").slice(0, 16)}`;
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

export const modeOf = (path: string) => (lstatSync(path).mode & 0o777).toString(8);

/** What install.sh is given for a test machine: this prefix without services, the test fleet's axe, the run's binary, a database. */
export function machineArgs(machine: {
  prefix: string;
  fleet: string;
  db: TestDatabase;
  passwordFile: string;
  ports: { proxy: number; blue: number; green: number; metrics: number | "off" };
}): string[] {
  const { target } = machine.db;
  return [
    "--prefix",
    machine.prefix,
    "--no-services",
    "--customer",
    "axe",
    "--customers",
    machine.fleet,
    "--binary",
    release().binary,
    "--database-url",
    `postgres://${target.user}@${encodeURIComponent(target.host)}:${target.port}/${target.database}`,
    "--database-password-file",
    machine.passwordFile,
    "--proxy-port",
    String(machine.ports.proxy),
    "--blue-port",
    String(machine.ports.blue),
    "--green-port",
    String(machine.ports.green),
    "--metrics-port",
    String(machine.ports.metrics),
  ];
}
