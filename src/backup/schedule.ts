/**
 * `backup schedule`: the timers that run `backup run` daily and `backup verify` weekly, as a
 * launchd plist (macOS) or a systemd service + timer pair (Linux). Printed, or written with
 * --install; enabling them is one command we print, never run behind the operator's back.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LABEL_PREFIX, selfCommand } from "../lib/version.ts";

export type Platform = "launchd" | "systemd";

export interface ScheduleOptions {
  /** The program and leading arguments that start axe-appliance. */
  program: string[];
  configDir: string;
  /** Where launchd writes each job's stderr (JSON log lines). */
  logDir: string;
  /** Daily backup at this hour and minute, local time. */
  hour?: number;
  minute?: number;
  /** WAL shipping every this many minutes (backup wal-ship); no such timer when unset. */
  walEveryMinutes?: number;
}

export interface UnitFile {
  name: string;
  text: string;
}

const LABEL = `${LABEL_PREFIX}`;

export function defaultPlatform(): Platform {
  return process.platform === "darwin" ? "launchd" : "systemd";
}

/** The command that starts this program (the compiled binary, or bun + src/main.ts), as services use it. */
export function selfProgram(): string[] {
  return selfCommand();
}

export function scheduleUnits(platform: Platform, options: ScheduleOptions): UnitFile[] {
  const hour = options.hour ?? 2;
  const minute = options.minute ?? 30;
  const jobs = [
    {
      id: "backup",
      args: ["backup", "run", "--tier", "all"],
      when: { hour, minute },
      weekday: undefined,
      what: "daily backup: local, ring peer, cold SSD",
    },
    {
      id: "backup-verify",
      args: ["backup", "verify"],
      when: { hour: (hour + 2) % 24, minute },
      weekday: 0,
      what: "weekly restic check and restore drill",
    },
    ...(options.walEveryMinutes
      ? [
          {
            id: "wal-ship",
            args: ["backup", "wal-ship"],
            every: options.walEveryMinutes,
            weekday: undefined,
            what: "WAL segments from the spool to every tier",
          },
        ]
      : []),
  ];
  return platform === "launchd" ? jobs.map((j) => plist(j, options)) : jobs.flatMap((j) => systemd(j, options));
}

interface Job {
  id: string;
  args: string[];
  /** At a time of day (and weekday), or every `every` minutes. */
  when?: { hour: number; minute: number };
  every?: number;
  weekday: number | undefined;
  what: string;
}

const xml = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

function plist(job: Job, options: ScheduleOptions): UnitFile {
  const argv = [...options.program, ...job.args, "--config", options.configDir];
  const interval = job.when
    ? [
        `  <key>StartCalendarInterval</key>`,
        `  <dict>`,
        ...(job.weekday === undefined ? [] : [`    <key>Weekday</key><integer>${job.weekday}</integer>`]),
        `    <key>Hour</key><integer>${job.when.hour}</integer>`,
        `    <key>Minute</key><integer>${job.when.minute}</integer>`,
        `  </dict>`,
      ]
    : [`  <key>StartInterval</key><integer>${(job.every ?? 5) * 60}</integer>`];
  const text = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`,
    `<!-- axe-appliance: ${job.what} -->`,
    `<plist version="1.0">`,
    `<dict>`,
    `  <key>Label</key><string>${LABEL}.${job.id}</string>`,
    `  <key>ProgramArguments</key>`,
    `  <array>`,
    ...argv.map((a) => `    <string>${xml(a)}</string>`),
    `  </array>`,
    ...interval,
    `  <key>StandardErrorPath</key><string>${xml(join(options.logDir, `${job.id}.log`))}</string>`,
    `  <key>LowPriorityIO</key><true/>`,
    `  <key>Nice</key><integer>10</integer>`,
    `</dict>`,
    `</plist>`,
    ``,
  ].join("\n");
  return { name: `${LABEL}.${job.id}.plist`, text };
}

const quote = (s: string) =>
  /^[\w@%+=:,./-]+$/.test(s) ? s : `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
const pad = (n: number) => String(n).padStart(2, "0");

function systemd(job: Job, options: ScheduleOptions): UnitFile[] {
  const argv = [...options.program, ...job.args, "--config", options.configDir];
  const day = job.weekday === undefined ? "*-*-*" : "Sun *-*-*";
  return [
    {
      name: `${LABEL}.${job.id}.service`,
      text: [
        "[Unit]",
        `Description=axe-appliance ${job.what}`,
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        `ExecStart=${argv.map(quote).join(" ")}`,
        "Nice=10",
        "IOSchedulingClass=idle",
        "",
      ].join("\n"),
    },
    {
      name: `${LABEL}.${job.id}.timer`,
      text: [
        "[Unit]",
        `Description=axe-appliance ${job.what}`,
        "",
        "[Timer]",
        ...(job.when
          ? [
              `OnCalendar=${day} ${pad(job.when.hour)}:${pad(job.when.minute)}:00`,
              "Persistent=true",
              "RandomizedDelaySec=10min",
            ]
          : [`OnBootSec=${job.every}min`, `OnUnitActiveSec=${job.every}min`]),
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
      ].join("\n"),
    },
  ];
}

export function defaultUnitDir(platform: Platform): string {
  return platform === "launchd" ? "/Library/LaunchDaemons" : "/etc/systemd/system";
}

/** Writes the unit files into `dir`; returns their paths and the command that enables them. */
export function installUnits(platform: Platform, units: UnitFile[], dir: string): { paths: string[]; enable: string } {
  mkdirSync(dir, { recursive: true });
  const paths = units.map((u) => {
    const path = join(dir, u.name);
    writeFileSync(path, u.text, { mode: 0o644 });
    return path;
  });
  const enable =
    platform === "launchd"
      ? paths.map((p) => `sudo launchctl bootstrap system ${p}`).join(" && ")
      : `sudo systemctl daemon-reload && sudo systemctl enable --now ${units
          .filter((u) => u.name.endsWith(".timer"))
          .map((u) => u.name)
          .join(" ")}`;
  return { paths, enable };
}
