/**
 * `axe-appliance services print|install|uninstall`: the launchd plists or systemd units that keep
 * proxy, blue and green alive and run the backup timers, as install.sh puts them on a machine.
 * The text comes from src/services and src/backup/schedule.ts; this command only writes, loads and
 * removes it, and gives each color a first release to run (the units name current/<color>).
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { scheduleUnits, type Platform } from "../backup/schedule.ts";
import { loadConfig, type Config } from "../config/load.ts";
import { COLORS, pointColor } from "../deploy/colors.ts";
import { parseManifest, RELEASE_FORMAT, VERSION_PATTERN } from "../deploy/manifest.ts";
import { BINARY_NAME, MANIFEST_NAME } from "../deploy/release-dir.ts";
import { findRelease, releasesDir } from "../deploy/releases.ts";
import { choiceFlag, CONFIG_OPTION, stringFlag, type Command, type Invocation } from "../lib/cli.ts";
import { ConfigError, DeployError } from "../lib/errors.ts";
import { launchdPlists } from "../services/launchd.ts";
import { systemdUnits } from "../services/systemd.ts";
import { currentLink, linkCurrent } from "../services/unit-paths.ts";

interface UnitFile {
  file: string;
  text: string;
  /** What systemd enables (services and timers, not the oneshot jobs the timers start). */
  enable: boolean;
}

const DEFAULT_BINARY = "/opt/axe/bin/axe-appliance";
const defaultDir = (backend: Platform) => (backend === "launchd" ? "/Library/LaunchDaemons" : "/etc/systemd/system");
const backendFlag = (inv: Invocation): Platform => choiceFlag(inv, "backend", ["launchd", "systemd"] as const) ?? (process.platform === "darwin" ? "launchd" : "systemd");

/** Every file launchd or systemd needs for this appliance: proxy, blue, green, backup jobs. */
export function applianceUnits(config: Config, backend: Platform, binary: string, user?: string): UnitFile[] {
  const options = { binary, ...(user ? { user } : {}) };
  const services = (backend === "launchd" ? launchdPlists(config, options) : systemdUnits(config, options)).map((u) => ({ ...u, enable: true }));
  const backups = scheduleUnits(backend, { program: [binary], configDir: config.dir, logDir: join(config.paths.data, "logs") }).map((u) => ({
    file: u.name,
    text: u.text,
    enable: backend === "launchd" || u.name.endsWith(".timer"),
  }));
  return [...services, ...backups];
}

/** The file names alone (uninstall needs no valid config). */
function unitNames(backend: Platform): Array<Pick<UnitFile, "file" | "enable">> {
  const services = ["proxy", "blue", "green"].map((n) => ({ file: `ai.axelabs.axe.${n}.${backend === "launchd" ? "plist" : "service"}`, enable: true }));
  const backups = scheduleUnits(backend, { program: ["x"], configDir: "/", logDir: "/" }).map((u) => ({ file: u.name, enable: backend === "launchd" || u.name.endsWith(".timer") }));
  return [...services, ...backups];
}

const label = (file: string) => file.replace(/\.plist$/, "");

function run(program: string, args: string[], say: (line: string) => void, mustSucceed = true): boolean {
  const result = spawnSync(program, args, { encoding: "utf8" });
  const ok = result.status === 0;
  say(`${ok ? "ran" : "failed"}: ${program} ${args.join(" ")}`);
  if (!ok && mustSucceed)
    throw new DeployError("SERVICE_FAILED", `${program} ${args.join(" ")} failed: ${(result.stderr || result.stdout || result.error?.message || "").trim()}`, "see the service's log under data_dir/logs");
  return ok;
}

const launchdLoaded = (file: string) => spawnSync("launchctl", ["print", `system/${label(file)}`], { stdio: "ignore" }).status === 0;

/** What `--version` of a binary says, as manifest fields. */
function describeBinary(binary: string): { version: string; commit: string; target: string; builtAt: string } {
  const result = spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 15_000 });
  const match = /^axe-appliance (\S+) \(commit (\S+), bun-([a-z0-9]+-[a-z0-9]+)(?: \(source\))?(?:, built (\S+))?\)$/.exec((result.stdout ?? "").trim());
  if (result.status !== 0 || !match)
    throw new ConfigError("BINARY_UNKNOWN", `${binary} --version did not answer as axe-appliance (${(result.stdout || result.stderr || "").trim() || `exit ${result.status}`})`, "pass the compiled binary from `npm run build`");
  const [, version, commit, target, builtAt] = match;
  return { version: version!, commit: commit!, target: target!, builtAt: builtAt || new Date(statSync(binary).mtimeMs).toISOString() };
}

/**
 * A color with no current/<color> link yet gets `binary` as its first release: releases/<version>/
 * (binary and manifest, as the deploy receiver leaves them), the link and colors.json. A color a
 * deploy already set up is never touched. Returns one line per thing done.
 */
export function seedReleases(config: Config, binary: string, dryRun: boolean): string[] {
  const data = config.paths.data;
  const missing = COLORS.filter((color) => !existsSync(currentLink(data, color)));
  if (missing.length === 0) return [];
  if (dryRun && !existsSync(binary)) return [`would install a first release from ${binary} and point ${missing.join(" and ")} at it`];
  const info = describeBinary(binary);
  const stamp = info.builtAt.replace(/[-:T]/g, "").slice(0, 14);
  const version = `${info.version}+${stamp}.${info.commit.replace(/[^0-9A-Za-z]/g, "").slice(0, 12)}`;
  if (!VERSION_PATTERN.test(version)) throw new ConfigError("BINARY_UNKNOWN", `cannot name a release after ${binary}: "${version}"`);
  const lines: string[] = [];
  if (!findRelease(data, version)) {
    lines.push(`${dryRun ? "would install" : "installed"} release ${version} from ${binary} into ${join(releasesDir(data), version)}`);
    if (!dryRun) installSeed(data, binary, version, info);
  }
  for (const color of missing) {
    lines.push(`${dryRun ? "would point" : "pointed"} ${color} at release ${version}`);
    if (dryRun) continue;
    linkCurrent(data, color, version);
    pointColor(data, color, version); // the unit runs the link, so colors.json must say the same
  }
  return lines;
}

function installSeed(data: string, binary: string, version: string, info: ReturnType<typeof describeBinary>): void {
  const target = join(releasesDir(data), version);
  const staging = `${target}.staging-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true, mode: 0o755 });
  copyFileSync(binary, join(staging, BINARY_NAME));
  chmodSync(join(staging, BINARY_NAME), 0o755);
  const bytes = readFileSync(join(staging, BINARY_NAME));
  const manifest = parseManifest({
    format: RELEASE_FORMAT,
    version,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    size: bytes.length,
    commit: info.commit,
    target: info.target,
    builtAt: info.builtAt,
  });
  writeFileSync(join(staging, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + "\n");
  renameSync(staging, target);
}

/** Writes files whose text changed (0644, atomically); returns the names it wrote and those it replaced. */
function writeUnits(dir: string, units: UnitFile[], dryRun: boolean, say: (line: string) => void): { changed: Set<string>; replaced: Set<string> } {
  const changed = new Set<string>();
  const replaced = new Set<string>();
  if (!dryRun) mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const unit of units) {
    const path = join(dir, unit.file);
    const same = existsSync(path) && readFileSync(path, "utf8") === unit.text;
    if (same) {
      say(`unchanged ${path}`);
      continue;
    }
    changed.add(unit.file);
    if (existsSync(path)) replaced.add(unit.file);
    say(`${dryRun ? "would write" : "wrote"} ${path}`);
    if (dryRun) continue;
    const temp = `${path}.tmp-${process.pid}`;
    writeFileSync(temp, unit.text, { mode: 0o644 });
    chmodSync(temp, 0o644);
    renameSync(temp, path);
  }
  return { changed, replaced };
}

function loadUnits(backend: Platform, dir: string, units: UnitFile[], written: { changed: Set<string>; replaced: Set<string> }, dryRun: boolean, say: (line: string) => void): void {
  const { changed, replaced } = written;
  const act = (program: string, args: string[], mustSucceed = true) => (dryRun ? (say(`would run: ${program} ${args.join(" ")}`), true) : run(program, args, say, mustSucceed));
  if (backend === "launchd") {
    for (const unit of units) {
      const loaded = launchdLoaded(unit.file);
      if (loaded && !changed.has(unit.file)) continue;
      if (loaded) act("launchctl", ["bootout", `system/${label(unit.file)}`], false);
      act("launchctl", ["bootstrap", "system", join(dir, unit.file)]);
    }
    return;
  }
  if (changed.size > 0) act("systemctl", ["daemon-reload"]);
  const enable = units.filter((u) => u.enable).map((u) => u.file);
  const settled = (file: string) => ["is-enabled", "is-active"].every((verb) => spawnSync("systemctl", [verb, "--quiet", file], { stdio: "ignore" }).status === 0);
  const pending = enable.filter((f) => changed.has(f) || !settled(f));
  if (pending.length) act("systemctl", ["enable", "--now", ...pending]);
  // enable --now started the new ones; a running service whose unit file was replaced needs a restart to use it
  const restart = enable.filter((f) => replaced.has(f) && f.endsWith(".service"));
  if (restart.length) act("systemctl", ["try-restart", ...restart]);
}

const COMMON = {
  backend: { type: "string", value: "NAME", description: "launchd or systemd (default: this machine's)" },
  dir: { type: "string", value: "DIR", description: "where the files go (default /Library/LaunchDaemons or /etc/systemd/system)" },
  "dry-run": { type: "boolean", description: "print what would change and change nothing" },
} as const;
const UNIT_OPTIONS = {
  binary: { type: "string", value: "PATH", description: `the installed binary the proxy and backups run (default ${DEFAULT_BINARY})` },
  user: { type: "string", value: "NAME", description: "run the services as this account (default: root, which restarts them on deploys)" },
} as const;
const NO_LOAD = { type: "boolean", description: "write or remove the files only; do not run launchctl or systemctl" } as const;

export const servicesCommand: Command = {
  name: "services",
  summary: "the launchd plists or systemd units for proxy, blue, green and the backup timers",
  details: `
Files: ai.axelabs.axe.{proxy,blue,green} (kept alive) and the backup jobs of \`backup schedule\`.
A color's unit runs {data_dir}/current/<color>/axe-appliance, which deploys repoint; install gives a
color with no release yet the installed binary as its first one. install.sh runs these commands.
Exit codes: 0 done (or nothing to do), 3 config invalid, 6 launchctl or systemctl failed, 2 usage.`,
  subcommands: [
    {
      name: "print",
      summary: "print every file's text (validates appliance.yaml and customers.yaml on the way)",
      usage: "[--backend launchd|systemd] [--binary PATH] [--user NAME] [--config DIR]",
      options: { backend: COMMON.backend, ...UNIT_OPTIONS, config: CONFIG_OPTION },
      run: (inv) => {
        const config = loadConfig({ dir: stringFlag(inv, "config") });
        for (const u of applianceUnits(config, backendFlag(inv), stringFlag(inv, "binary") ?? DEFAULT_BINARY, stringFlag(inv, "user")))
          process.stdout.write(`# ${u.file}\n${u.text}\n`);
      },
    },
    {
      name: "install",
      summary: "seed each color's first release, write the files that changed, load them",
      usage: "[--backend launchd|systemd] [--dir DIR] [--binary PATH] [--user NAME] [--no-load] [--dry-run] [--config DIR]",
      details: `Idempotent: unchanged files are left alone and already loaded services are not restarted.
launchd: launchctl bootstrap system (bootout first when a loaded plist changed).
systemd: daemon-reload when a file changed, enable --now, try-restart of changed services.`,
      options: { ...COMMON, ...UNIT_OPTIONS, "no-load": NO_LOAD, config: CONFIG_OPTION },
      run: (inv) => {
        const config = loadConfig({ dir: stringFlag(inv, "config") });
        const backend = backendFlag(inv);
        const binary = resolve(stringFlag(inv, "binary") ?? DEFAULT_BINARY);
        const dir = resolve(stringFlag(inv, "dir") ?? defaultDir(backend));
        const dryRun = inv.values["dry-run"] === true;
        const say = (line: string) => process.stdout.write(`${line}\n`);
        seedReleases(config, binary, dryRun).forEach(say);
        const units = applianceUnits(config, backend, binary, stringFlag(inv, "user"));
        const written = writeUnits(dir, units, dryRun, say);
        if (!inv.values["no-load"]) loadUnits(backend, dir, units, written, dryRun, say);
      },
    },
    {
      name: "uninstall",
      summary: "stop and unload the services and timers, remove their files (data and config stay)",
      usage: "[--backend launchd|systemd] [--dir DIR] [--no-load] [--dry-run]",
      options: { ...COMMON, "no-load": NO_LOAD },
      run: (inv) => {
        const backend = backendFlag(inv);
        const dir = resolve(stringFlag(inv, "dir") ?? defaultDir(backend));
        const dryRun = inv.values["dry-run"] === true;
        const say = (line: string) => process.stdout.write(`${line}\n`);
        const units = unitNames(backend).filter((u) => existsSync(join(dir, u.file)));
        if (units.length === 0) say(`nothing to remove in ${dir}`);
        const act = (program: string, args: string[]) => (dryRun ? say(`would run: ${program} ${args.join(" ")}`) : run(program, args, say, false));
        if (!inv.values["no-load"]) {
          if (backend === "launchd") for (const u of units) act("launchctl", ["bootout", `system/${label(u.file)}`]);
          else if (units.some((u) => u.enable)) act("systemctl", ["disable", "--now", ...units.filter((u) => u.enable).map((u) => u.file)]);
        }
        for (const u of units) {
          say(`${dryRun ? "would remove" : "removed"} ${join(dir, u.file)}`);
          if (!dryRun) rmSync(join(dir, u.file), { force: true });
        }
        if (!inv.values["no-load"] && backend === "systemd" && units.length) act("systemctl", ["daemon-reload"]);
      },
    },
  ],
};
