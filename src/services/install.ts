/**
 * What `axe-appliance services install|uninstall` does: the launchd plists or systemd units for
 * proxy, blue, green and the backup jobs (text from src/services and src/backup/schedule.ts),
 * written when changed, loaded and removed, and each color's first release seeded.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fchmodSync,
  fchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import { type Platform, scheduleUnits } from "../backup/schedule.ts";
import type { Config } from "../config/load.ts";
import { frameAccount } from "../config/run-as.ts";
import { currentLink, pointColor } from "../deploy/colors.ts";
import { LEGACY_RELEASE_FORMAT, parseManifest, VERSION_PATTERN } from "../deploy/manifest.ts";
import { findRelease, placeRelease, releasesDir, writeBinaryAnswer } from "../deploy/releases.ts";
import { writeFileAtomic } from "../lib/atomic-write.ts";
import { COLORS } from "../lib/colors.ts";
import { ConfigError, DeployError } from "../lib/errors.ts";
import { runProgram } from "../lib/program.ts";
import { type BinaryAnswer, parseVersionAnswer } from "../lib/version.ts";
import { launchdPlists } from "./launchd.ts";
import { askServiceManager } from "./service-manager.ts";
import { systemdUnits } from "./systemd.ts";
import { unitCommand } from "./unit-commands.ts";

export interface UnitFile {
  file: string;
  text: string;
  /** What systemd enables (services and timers, not the oneshot jobs the timers start). */
  enable: boolean;
}

/** Every file launchd or systemd needs for this appliance: proxy, blue, green, backup jobs. */
export function applianceUnits(config: Config, backend: Platform, binary: string, user?: string): UnitFile[] {
  const options = { binary, ...(user ? { user } : {}) };
  const services = (backend === "launchd" ? launchdPlists(config, options) : systemdUnits(config, options)).map(
    (u) => ({ ...u, enable: true }),
  );
  const backups = scheduleUnits(backend, {
    program: [binary],
    configDir: config.dir,
    logDir: join(config.paths.data, "logs"),
  }).map((u) => ({
    file: u.name,
    text: u.text,
    enable: backend === "launchd" || u.name.endsWith(".timer"),
  }));
  return [...services, ...backups];
}

/** The file names alone (uninstall needs no valid config). */
function unitNames(backend: Platform): Array<Pick<UnitFile, "file" | "enable">> {
  const services = ["proxy", "blue", "green"].map((n) => ({
    file: `ai.axelabs.axe.${n}.${backend === "launchd" ? "plist" : "service"}`,
    enable: true,
  }));
  const backups = scheduleUnits(backend, { program: ["x"], configDir: "/", logDir: "/" }).map((u) => ({
    file: u.name,
    enable: backend === "launchd" || u.name.endsWith(".timer"),
  }));
  return [...services, ...backups];
}

const label = (file: string) => file.replace(/\.plist$/, "");

/** systemd names of the backup timers before every unit was ai.axelabs.axe.*: retired on install, removed on uninstall. */
const LEGACY_SYSTEMD_UNITS = ["axe-backup", "axe-backup-verify"].flatMap((id) => [
  { file: `${id}.timer`, enable: true },
  { file: `${id}.service`, enable: false },
]);

/** Disables and removes backup timers under their old names, so an upgraded machine does not back up twice. */
export async function retireLegacyUnits(
  backend: Platform,
  dir: string,
  options: { load: boolean; dryRun: boolean },
  say: (line: string) => void,
): Promise<void> {
  if (backend !== "systemd") return;
  const found = LEGACY_SYSTEMD_UNITS.filter((u) => existsSync(join(dir, u.file)));
  if (!found.length) return;
  const timers = found.filter((u) => u.enable).map((u) => u.file);
  if (options.load && timers.length)
    options.dryRun
      ? say(`would run: systemctl disable --now ${timers.join(" ")}`)
      : await run("systemctl", ["disable", "--now", ...timers], say, false);
  for (const u of found) {
    say(`${options.dryRun ? "would remove" : "removed"} ${join(dir, u.file)} (renamed ai.axelabs.axe.*)`);
    if (!options.dryRun) rmSync(join(dir, u.file), { force: true });
  }
}

async function run(program: string, args: string[], say: (line: string) => void, mustSucceed = true): Promise<boolean> {
  const { ok, out } = await askServiceManager([program, ...args]);
  say(`${ok ? "ran" : "failed"}: ${program} ${args.join(" ")}`);
  if (!ok && mustSucceed)
    throw new DeployError(
      "SERVICE_FAILED",
      `${program} ${args.join(" ")} failed: ${out}`,
      "see the service's log under data_dir/logs",
    );
  return ok;
}

const launchdLoaded = async (file: string) =>
  (await askServiceManager(["launchctl", "print", `system/${label(file)}`])).ok;

/** What `--version` of a binary says, as manifest fields. */
async function describeBinary(binary: string): Promise<BinaryAnswer> {
  const exit = await runProgram([binary, "--version", "--json"], {
    deadlineMs: 15_000,
    deadlineSignal: "SIGTERM",
  }).catch((error: Error) => ({ code: null, stdout: "", stderr: error.message }));
  const answer = exit.code === 0 ? parseVersionAnswer(exit.stdout) : undefined;
  if (!answer)
    throw new ConfigError(
      "BINARY_UNKNOWN",
      `${binary} --version did not answer as axe-appliance (${(exit.stdout || exit.stderr).trim() || `exit ${exit.code}`})`,
      "pass the compiled binary from `npm run build`",
    );
  return { ...answer, builtAt: answer.builtAt || new Date(statSync(binary).mtimeMs).toISOString() };
}

/**
 * A color with no current/<color> link yet gets `binary` as its first release: releases/<version>/
 * (binary and manifest, as the deploy receiver leaves them), the link and colors.json. A color a
 * deploy already set up is never touched. Returns one line per thing done.
 */
export async function seedReleases(config: Config, binary: string, dryRun: boolean): Promise<string[]> {
  const data = config.paths.data;
  const missing = COLORS.filter((color) => !existsSync(currentLink(data, color)));
  if (missing.length === 0) return [];
  if (dryRun && !existsSync(binary))
    return [`would install a first release from ${binary} and point ${missing.join(" and ")} at it`];
  const info = await describeBinary(binary);
  const stamp = info.builtAt.replace(/[-:T]/g, "").slice(0, 14);
  const version = `${info.version}+${stamp}.${info.commit.replace(/[^0-9A-Za-z]/g, "").slice(0, 12)}`;
  if (!VERSION_PATTERN.test(version))
    throw new ConfigError("BINARY_UNKNOWN", `cannot name a release after ${binary}: "${version}"`);
  const lines: string[] = [];
  if (!findRelease(data, version)) {
    lines.push(
      `${dryRun ? "would install" : "installed"} release ${version} from ${binary} into ${join(releasesDir(data), version)}`,
    );
    if (!dryRun) installSeed(data, binary, version, info);
  }
  for (const color of missing) {
    lines.push(`${dryRun ? "would point" : "pointed"} ${color} at release ${version}`);
    if (dryRun) continue;
    pointColor(data, color, version);
  }
  return lines;
}

function installSeed(data: string, binary: string, version: string, info: BinaryAnswer): void {
  const bytes = readFileSync(binary);
  // Not a signed release: no sequence, so it never raises the floor that refuses older releases.
  const manifest = parseManifest({
    format: LEGACY_RELEASE_FORMAT,
    version,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    size: bytes.length,
    commit: info.commit,
    target: info.target,
    builtAt: info.builtAt,
  });
  writeBinaryAnswer(
    placeRelease(data, manifest, (path) => copyFileSync(binary, path)),
    info,
  );
}

/**
 * launchd may open a color's log as the account the color runs as (frame.run_as, decision 79):
 * each color's log is made that account's (0600), and the logs directory root's, 0710, with its group.
 */
export async function giveColorLogs(config: Config, dryRun: boolean, say: (line: string) => void): Promise<void> {
  const account = await frameAccount(config);
  if (!account) return;
  const dir = join(config.paths.data, "logs");
  if (!dryRun) mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const color of COLORS) {
    const file = unitCommand(config, color).logFile;
    const stat = existsSync(file) ? lstatSync(file) : undefined;
    if (stat && stat.uid === account.uid && (stat.mode & 0o777) === 0o600) continue;
    say(`${dryRun ? "would give" : "gave"} ${file} to ${account.name}`);
    if (dryRun) continue;
    if (stat && !stat.isFile()) throw new ConfigError("RUN_AS_UNSAFE", `${file} is not a regular file`, "remove it");
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW;
    const fd = openSync(file, flags, 0o600); // never through a link: what is given is what was checked
    try {
      fchownSync(fd, account.uid, account.gid);
      fchmodSync(fd, 0o600);
    } finally {
      closeSync(fd);
    }
  }
  const stat = existsSync(dir) ? lstatSync(dir) : undefined;
  if (dryRun || !stat || (stat.gid === account.gid && (stat.mode & 0o777) === 0o710)) return;
  chownSync(dir, 0, account.gid);
  chmodSync(dir, 0o710);
  say(`gave ${account.name}'s group a way through ${dir} (root's, 0710)`);
}

/** Writes files whose text changed (0644, atomically); returns the names it wrote and those it replaced. */
export function writeUnits(
  dir: string,
  units: UnitFile[],
  dryRun: boolean,
  say: (line: string) => void,
): { changed: Set<string>; replaced: Set<string> } {
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
    writeFileAtomic(path, unit.text, { mode: 0o644, dirMode: 0o755 });
  }
  return { changed, replaced };
}

export async function loadUnits(
  backend: Platform,
  dir: string,
  units: UnitFile[],
  written: { changed: Set<string>; replaced: Set<string> },
  dryRun: boolean,
  say: (line: string) => void,
): Promise<void> {
  const { changed, replaced } = written;
  const act = async (program: string, args: string[], mustSucceed = true) =>
    dryRun ? (say(`would run: ${program} ${args.join(" ")}`), true) : run(program, args, say, mustSucceed);
  if (backend === "launchd") {
    for (const unit of units) {
      const loaded = await launchdLoaded(unit.file);
      if (loaded && !changed.has(unit.file)) continue;
      if (loaded) await act("launchctl", ["bootout", `system/${label(unit.file)}`], false);
      await act("launchctl", ["bootstrap", "system", join(dir, unit.file)]);
    }
    return;
  }
  if (changed.size > 0) await act("systemctl", ["daemon-reload"]);
  const enable = units.filter((u) => u.enable).map((u) => u.file);
  const pending: string[] = [];
  for (const file of enable) if (changed.has(file) || !(await settled(file))) pending.push(file);
  if (pending.length) await act("systemctl", ["enable", "--now", ...pending]);
  // enable --now started the new ones; a running service whose unit file was replaced needs a restart to use it
  const restart = enable.filter((f) => replaced.has(f) && f.endsWith(".service"));
  if (restart.length) await act("systemctl", ["try-restart", ...restart]);
}

async function settled(file: string): Promise<boolean> {
  for (const verb of ["is-enabled", "is-active"])
    if (!(await askServiceManager(["systemctl", verb, "--quiet", file])).ok) return false;
  return true;
}

/** Stops and unloads the services and timers found in `dir` (unless `load` is false) and removes their files. */
export async function uninstallUnits(
  backend: Platform,
  dir: string,
  options: { load: boolean; dryRun: boolean },
  say: (line: string) => void,
): Promise<void> {
  const { load, dryRun } = options;
  const units = [...unitNames(backend), ...(backend === "systemd" ? LEGACY_SYSTEMD_UNITS : [])].filter((u) =>
    existsSync(join(dir, u.file)),
  );
  if (units.length === 0) say(`nothing to remove in ${dir}`);
  const act = async (program: string, args: string[]) =>
    dryRun ? say(`would run: ${program} ${args.join(" ")}`) : void (await run(program, args, say, false));
  if (load) {
    if (backend === "launchd") for (const u of units) await act("launchctl", ["bootout", `system/${label(u.file)}`]);
    else if (units.some((u) => u.enable))
      await act("systemctl", ["disable", "--now", ...units.filter((u) => u.enable).map((u) => u.file)]);
  }
  for (const u of units) {
    say(`${dryRun ? "would remove" : "removed"} ${join(dir, u.file)}`);
    if (!dryRun) rmSync(join(dir, u.file), { force: true });
  }
  if (load && backend === "systemd" && units.length) await act("systemctl", ["daemon-reload"]);
}
