import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config/load.ts";
import { backupMetrics } from "../../src/status/backup-metrics.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { parseExposition } from "../helpers/prometheus.ts";
import { recordSnapshots } from "./fixtures.ts";

describe("backup metrics", () => {
  test("every configured tier has its age, time, limit and problems, even before its first snapshot", () => {
    const config = loadConfig({ dir: makeConfigDir({ appliance: { backup: { cold: { enabled: false } } } }) });
    const before = parseExposition(backupMetrics(config));
    expect(before.value("axe_backup_last_success_age_seconds", { tier: "local" })).toBe(Infinity);
    expect(before.value("axe_backup_last_success_timestamp_seconds", { tier: "local" })).toBe(0);
    expect(before.value("axe_backup_problems", { tier: "local" })).toBe(1); // no good snapshot yet
    expect(before.value("axe_backup_age_limit_seconds", { tier: "local" })).toBe(26 * 3600);
    expect(before.value("axe_backup_age_limit_seconds", { tier: "ring" })).toBe(50 * 3600);
    expect(before.series("axe_backup_age_limit_seconds", { tier: "cold" })).toEqual([]); // not configured

    recordSnapshots(config.paths.state, { local: 2, ring: 60 });
    const now = new Date();
    const after = parseExposition(backupMetrics(config, now));
    const age = after.value("axe_backup_last_success_age_seconds", { tier: "local" })!;
    expect(age).toBeGreaterThan(2 * 3600 - 60);
    expect(age).toBeLessThan(2 * 3600 + 60);
    expect(after.value("axe_backup_problems", { tier: "local" })).toBe(0);
    expect(after.value("axe_backup_problems", { tier: "ring" })).toBe(1); // 60 h, over its 50 h limit
    expect(after.value("axe_backup_last_success_timestamp_seconds", { tier: "ring" })).toBeCloseTo(
      now.getTime() / 1000 - 60 * 3600,
      -2,
    );
  });
});
