import { CONFIG_OPTION, type Command } from "../lib/cli.ts";
import { notBuilt } from "./not-built.ts";

export const backupCommand: Command = {
  name: "backup",
  summary: "restic backups in three tiers: local, ring peer, cold SSD",
  subcommands: [
    notBuilt("init", "create the repositories and their 0600 password files", "[--config DIR]", "backup", { config: CONFIG_OPTION }),
    notBuilt("run", "dump the database and back up config and state", "[--tier local|ring|cold|all] [--config DIR]", "backup", { config: CONFIG_OPTION }),
    notBuilt("status", "per tier: last good snapshot age, last check, last drill", "[--json] [--config DIR]", "backup", { config: CONFIG_OPTION }),
    notBuilt("verify", "restic check plus a restore drill", "[--config DIR]", "backup", { config: CONFIG_OPTION }),
    notBuilt("restore", "restore a snapshot to a database or a directory", "--snapshot ID (--to-database URL | --to-dir DIR)", "backup", { config: CONFIG_OPTION }),
    notBuilt("schedule", "print or install the launchd/systemd timers", "[--install] [--config DIR]", "backup", { config: CONFIG_OPTION }),
  ],
};
