import { describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { launchdProblems, parsePlistStrictly } from "../helpers/plist.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("backup schedule", () => {
  test("systemd: a oneshot service per job and a persistent timer, with this config dir", async () => {
    const config = makeConfigDir({ appliance: { backup: { wal: { enabled: true } } } });
    const out = await runCli(["backup", "schedule", "--platform", "systemd", "--config", config]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain("# ai.axelabs.axe.backup.service\n[Unit]");
    expect(out.stdout).toMatch(new RegExp(`ExecStart=\\S+ \\S*main\\.ts backup run --tier all --config ${config}\\n`));
    expect(out.stdout).toContain("# ai.axelabs.axe.backup.timer\n");
    expect(out.stdout).toContain("OnCalendar=*-*-* 02:30:00\nPersistent=true");
    expect(out.stdout).toMatch(/ExecStart=.* backup verify --config /);
    expect(out.stdout).toContain("OnCalendar=Sun *-*-* 04:30:00");
    expect(out.stdout).toContain("WantedBy=timers.target");
    expect(out.stdout).toMatch(/ExecStart=.* backup wal-ship --config /);
    expect(out.stdout).toContain("OnBootSec=5min\nOnUnitActiveSec=5min");
  }, 30_000);

  test("launchd: a plist per job with the program arguments and a calendar interval", async () => {
    const config = makeConfigDir({ appliance: { backup: { wal: { enabled: true } } } });
    const out = await runCli(["backup", "schedule", "--platform", "launchd", "--config", config]);
    expect(out.code).toBe(0);
    const plists = out.stdout.split(/^# /m).filter(Boolean);
    expect(plists.map((p) => p.split("\n")[0])).toEqual([
      "ai.axelabs.axe.backup.plist",
      "ai.axelabs.axe.backup-verify.plist",
      "ai.axelabs.axe.wal-ship.plist",
    ]);
    const daily = plists[0]!;
    expect(daily).toContain("<key>Label</key><string>ai.axelabs.axe.backup</string>");
    const args = [...daily.matchAll(/^ {4}<string>(.*)<\/string>$/gm)].map((m) => m[1]);
    expect(args.slice(-6)).toEqual(["backup", "run", "--tier", "all", "--config", config]);
    expect(daily).toMatch(/<key>Hour<\/key><integer>2<\/integer>\s+<key>Minute<\/key><integer>30<\/integer>/);
    expect(daily).not.toContain("Weekday");
    expect(plists[1]).toContain("<key>Weekday</key><integer>0</integer>");
    expect(daily).toContain(`<string>${join(config, "data", "logs", "backup.log")}</string>`);
    // As a Mac reads them: libplist parses each one, a round trip is equal, the keys are launchd's.
    for (const text of plists.map((p) => p.slice(p.indexOf("\n") + 1))) {
      const plist = parsePlistStrictly(text);
      expect(launchdProblems(plist, "timer")).toEqual([]);
      expect(((plist as Record<string, unknown>).ProgramArguments as string[]).slice(-2)).toEqual(["--config", config]);
    }
    expect(
      (parsePlistStrictly(daily.slice(daily.indexOf("\n") + 1)) as Record<string, unknown>).StartCalendarInterval,
    ).toEqual({
      Hour: 2,
      Minute: 30,
    });
    const ship = parsePlistStrictly(plists[2]!.slice(plists[2]!.indexOf("\n") + 1)) as Record<string, unknown>;
    expect(ship.StartInterval).toBe(300);
    expect((ship.ProgramArguments as string[]).slice(-4)).toEqual(["backup", "wal-ship", "--config", config]);
  }, 30_000);

  test("--install writes the files where asked and prints how to enable them", async () => {
    const config = makeConfigDir({ appliance: { backup: { wal: { enabled: true } } } });
    const dir = tempDir("axe-units");
    const out = await runCli([
      "backup",
      "schedule",
      "--install",
      "--platform",
      "systemd",
      "--dir",
      dir,
      "--config",
      config,
    ]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(
      "systemctl enable --now ai.axelabs.axe.backup.timer ai.axelabs.axe.backup-verify.timer ai.axelabs.axe.wal-ship.timer",
    );
    const timer = readFileSync(join(dir, "ai.axelabs.axe.backup.timer"), "utf8");
    expect(timer).toContain("OnCalendar=*-*-* 02:30:00");
    expect(statSync(join(dir, "ai.axelabs.axe.backup.service")).mode & 0o777).toBe(0o644);
  }, 30_000);

  test("an unknown platform is a usage error", async () => {
    const out = await runCli(["backup", "schedule", "--platform", "cron", "--config", makeConfigDir()]);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain("--platform must be one of launchd, systemd");
  }, 30_000);
});
