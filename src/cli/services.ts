/**
 * `axe-appliance services print|install|uninstall`: the launchd plists or systemd units that keep
 * proxy, blue and green alive and run the backup timers, as install.sh puts them on a machine.
 * The work is in src/services/install.ts, imported when a command runs.
 */
import { resolve } from "node:path";
import type { Platform } from "../backup/schedule.ts";
import { loadConfig } from "../config/load.ts";
import { CONFIG_OPTION, type Command, choiceFlag, type Invocation, stringFlag } from "../lib/cli.ts";

const DEFAULT_BINARY = "/opt/axe/bin/axe-appliance";
const defaultDir = (backend: Platform) => (backend === "launchd" ? "/Library/LaunchDaemons" : "/etc/systemd/system");
const backendFlag = (inv: Invocation): Platform =>
  choiceFlag(inv, "backend", ["launchd", "systemd"] as const) ??
  (process.platform === "darwin" ? "launchd" : "systemd");
const install = () => import("../services/install.ts");

const COMMON = {
  backend: { type: "string", value: "NAME", description: "launchd or systemd (default: this machine's)" },
  dir: {
    type: "string",
    value: "DIR",
    description: "where the files go (default /Library/LaunchDaemons or /etc/systemd/system)",
  },
  "dry-run": { type: "boolean", description: "print what would change and change nothing" },
} as const;
const UNIT_OPTIONS = {
  binary: {
    type: "string",
    value: "PATH",
    description: `the installed binary the proxy and backups run (default ${DEFAULT_BINARY})`,
  },
  user: {
    type: "string",
    value: "NAME",
    description: "run every service as this account (default: blue and green as frame.run_as, the proxy as root)",
  },
} as const;
const NO_LOAD = {
  type: "boolean",
  description: "write or remove the files only; do not run launchctl or systemctl",
} as const;

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
      run: async (inv) => {
        const config = loadConfig({ dir: stringFlag(inv, "config") });
        const { applianceUnits } = await install();
        for (const u of applianceUnits(
          config,
          backendFlag(inv),
          stringFlag(inv, "binary") ?? DEFAULT_BINARY,
          stringFlag(inv, "user"),
        ))
          process.stdout.write(`# ${u.file}\n${u.text}\n`);
      },
    },
    {
      name: "install",
      summary: "seed each color's first release, write the files that changed, load them",
      usage:
        "[--backend launchd|systemd] [--dir DIR] [--binary PATH] [--user NAME] [--no-load] [--dry-run] [--config DIR]",
      details: `Idempotent: unchanged files are left alone and already loaded services are not restarted.
launchd: launchctl bootstrap system (bootout first when a loaded plist changed).
systemd: daemon-reload when a file changed, enable --now, try-restart of changed services.`,
      options: { ...COMMON, ...UNIT_OPTIONS, "no-load": NO_LOAD, config: CONFIG_OPTION },
      run: async (inv) => {
        const config = loadConfig({ dir: stringFlag(inv, "config") });
        const { applianceUnits, giveColorLogs, loadUnits, retireLegacyUnits, seedReleases, writeUnits } =
          await install();
        const backend = backendFlag(inv);
        const binary = resolve(stringFlag(inv, "binary") ?? DEFAULT_BINARY);
        const dir = resolve(stringFlag(inv, "dir") ?? defaultDir(backend));
        const dryRun = inv.values["dry-run"] === true;
        const say = (line: string) => process.stdout.write(`${line}\n`);
        (await seedReleases(config, binary, dryRun)).forEach(say);
        const units = applianceUnits(config, backend, binary, stringFlag(inv, "user"));
        await retireLegacyUnits(backend, dir, { load: !inv.values["no-load"], dryRun }, say);
        await giveColorLogs(config, dryRun, say);
        const written = writeUnits(dir, units, dryRun, say);
        if (!inv.values["no-load"]) await loadUnits(backend, dir, units, written, dryRun, say);
      },
    },
    {
      name: "uninstall",
      summary: "stop and unload the services and timers, remove their files (data and config stay)",
      usage: "[--backend launchd|systemd] [--dir DIR] [--no-load] [--dry-run]",
      options: { ...COMMON, "no-load": NO_LOAD },
      run: async (inv) => {
        const backend = backendFlag(inv);
        const dir = resolve(stringFlag(inv, "dir") ?? defaultDir(backend));
        await (await install()).uninstallUnits(
          backend,
          dir,
          { load: !inv.values["no-load"], dryRun: inv.values["dry-run"] === true },
          (line) => process.stdout.write(`${line}\n`),
        );
      },
    },
  ],
};
