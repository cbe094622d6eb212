import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseResticVersion, Restic } from "../../src/backup/restic.ts";
import { forgetArgs } from "../../src/backup/retention.ts";
import { readStatus, reportTiers, type StatusFile } from "../../src/backup/status.ts";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";

const hoursAgo = (now: Date, h: number) => new Date(now.getTime() - h * 3_600_000).toISOString();

describe("backup status", () => {
  const now = new Date("2026-11-25T12:00:00Z");
  const limits = [
    { tier: "local" as const, enabled: true, limitHours: 26 },
    { tier: "ring" as const, enabled: false, limitHours: 50 },
    { tier: "cold" as const, enabled: true, limitHours: 30 * 24 },
  ];

  test("a tier older than its limit, or never backed up, is a problem; a disabled tier or a cold SSD never set up is not", () => {
    const status: StatusFile = {
      version: 1,
      updated: now.toISOString(),
      tiers: {
        local: { lastSnapshot: { time: hoursAgo(now, 30), id: "abcd1234" } },
        ring: { lastAttempt: { time: hoursAgo(now, 1), ok: false, error: "down" } },
      },
    };
    const [local, ring, cold] = reportTiers(status, limits, now);
    expect(local!.problems).toEqual(["last good snapshot is 30.0h old, over the limit of 26.0h"]);
    expect(ring!.problems).toEqual([]);
    // A machine that has never seen its cold SSD: yellow ("not set up"), not a failure forever.
    expect(cold!.problems).toEqual([]);
    expect(cold!.notes.join(" ")).toContain("not set up");
    status.tiers.cold = { lastAttempt: { time: hoursAgo(now, 1), ok: false, error: "disk full" } };
    expect(reportTiers(status, limits, now)[2]!.problems).toEqual([
      "no copy on the cold SSD yet: plug in the cold SSD: the next backup run (or `axe-appliance backup run --tier cold`) copies to it",
      "last run failed: disk full",
    ]);
    status.tiers.local!.lastSnapshot!.time = hoursAgo(now, 2);
    status.tiers.cold = { lastSnapshot: { time: hoursAgo(now, 24 * 10), id: "ffff0000" } };
    expect(reportTiers(status, limits, now).flatMap((r) => r.problems)).toEqual([]);
  });

  test("the CLI reads the JSON status file, says what is wrong, and exits 7; an invalid file is named", async () => {
    const config = makeConfigDir({ appliance: { backup: { ring: { enabled: false } } } });
    const state = join(config, "data", "state");
    mkdirSync(state, { recursive: true });
    const fresh = new Date().toISOString();
    writeFileSync(
      join(state, "backup.json"),
      JSON.stringify({
        version: 1,
        updated: fresh,
        tiers: {
          local: { lastSnapshot: { time: fresh, id: "abcd1234" }, size: 2048 },
          cold: { lastSnapshot: { time: "2026-01-01T00:00:00Z", id: "ffff0000" } },
        },
      }),
    );
    const out = await runCli(["backup", "status", "--json", "--config", config]);
    expect(out.code).toBe(7);
    const report = JSON.parse(out.stdout) as {
      ok: boolean;
      tiers: Array<{ tier: string; problems: string[]; size?: number }>;
    };
    expect(report.tiers.map((t) => [t.tier, t.problems.length])).toEqual([
      ["local", 0],
      ["ring", 0],
      ["cold", 1],
    ]);
    expect(report.tiers[2]!.problems[0]).toMatch(
      /^last good snapshot is \d+h old, over the limit of 720h: plug in the cold SSD: the next backup run/,
    );
    const table = await runCli(["backup", "status", "--config", config]);
    expect(table.stdout).toContain("ring   disabled");
    expect(table.stdout).toContain("2.0 KiB");

    // A machine that never gets an SSD turns the cold tier off, and status stops asking for it.
    const noCold = makeConfigDir({
      appliance: { data_dir: join(config, "data"), backup: { ring: { enabled: false }, cold: { enabled: false } } },
    });
    const off = await runCli(["backup", "status", "--config", noCold]);
    expect(off.stdout).toContain("cold   disabled");
    expect(off.code).toBe(0);

    writeFileSync(
      join(state, "backup.json"),
      JSON.stringify({ version: 1, updated: fresh, tiers: { local: { lastSnapshot: { time: 5 } } } }),
    );
    const bad = await runCli(["backup", "status", "--config", config]);
    expect(bad.code).toBe(7);
    expect(bad.stderr).toContain("backup.json: tiers.local.lastSnapshot.time");
    expect(() => readStatus(state)).toThrow(/tiers\.local\.lastSnapshot\.time/);
  }, 30_000);

  test("what the Postgres account wrote in its spool reaches the terminal without control sequences; --json keeps it", async () => {
    // the spool and its .wal-push.json are the cluster account's (decision 57): it may write any text there
    const spool = tempDir("axe-spool");
    const hostile = "disk full\x1b[2K\x1b[1A\x1b]52;c;cm0gLXJmIH4K\x07\u202e";
    writeFileSync(
      join(spool, ".wal-push.json"),
      JSON.stringify({
        failing: { since: new Date().toISOString(), segment: "000000010000000000000003", error: hostile },
      }),
    );
    const account = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
    if (process.getuid?.() === 0 && account.status === 0) {
      const uid = Number(account.stdout);
      chownSync(spool, uid, uid);
      chownSync(join(spool, ".wal-push.json"), uid, uid);
    }
    const config = makeConfigDir({
      appliance: { backup: { ring: { enabled: false }, wal: { enabled: true, spool } } },
    });
    const table = await runCli(["backup", "status", "--config", config]);
    expect(table.code).toBe(7);
    expect(table.stdout).toContain("WAL archiving is failing");
    expect(table.stdout).toContain("disk full");
    expect(table.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u202e]/);
    const json = JSON.parse((await runCli(["backup", "status", "--json", "--config", config])).stdout) as {
      wal: string;
    };
    expect(json.wal).toContain(hostile);
  }, 30_000);
});

describe("restic version and retention", () => {
  test("versions are parsed, and --stdin-from-command is used only from 0.17", () => {
    expect(parseResticVersion("restic 0.14.0 compiled with go1.19.8 on linux/amd64")).toMatchObject({
      major: 0,
      minor: 14,
      patch: 0,
    });
    expect(parseResticVersion("restic 0.17.3 compiled with go1.23.1 on darwin/arm64")).toMatchObject({ minor: 17 });
    expect(parseResticVersion("something else")).toBeUndefined();
    const installed = Restic.detect("restic");
    expect(installed.hasStdinFromCommand).toBe(installed.atLeast(0, 17));
    expect(installed.version.text).toStartWith("restic ");
  });

  test("forget keeps what the policy says, for this host only, and is skipped when the policy keeps everything", () => {
    expect(forgetArgs({ last: 0, hourly: 0, daily: 7, weekly: 4, monthly: 12 }, "axe")).toEqual([
      "forget",
      "--json",
      "--host",
      "axe",
      "--keep-daily",
      "7",
      "--keep-weekly",
      "4",
      "--keep-monthly",
      "12",
      "--keep-tag",
      "wal",
    ]);
    expect(forgetArgs({ last: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0 }, "axe")).toBeUndefined();
  });
});
