/** Free space on the data directory's file system: under status.disk_warn_free_percent (15) is yellow, under disk_fail_free_percent (5) red. */
import { existsSync, statfsSync } from "node:fs";
import { dirname } from "node:path";
import { formatBytes } from "../backup/status.ts";
import type { Config } from "../config/load.ts";
import type { Check, StatusReport } from "./report.ts";

export function checkDisk(config: Config): { disk: StatusReport["disk"]; check: Check } {
  let path = config.paths.data;
  while (!existsSync(path) && dirname(path) !== path) path = dirname(path); // not created yet: its file system is the parent's
  let stats;
  try {
    stats = statfsSync(path);
  } catch (error) {
    return {
      disk: null,
      check: { name: "disk", level: "warn", summary: `cannot read free space of ${path}: ${(error as Error).message}` },
    };
  }
  const freeBytes = stats.bavail * stats.bsize;
  const totalBytes = stats.blocks * stats.bsize;
  const ratio = totalBytes > 0 ? freeBytes / totalBytes : 0;
  const { disk_warn_free_percent: warn, disk_fail_free_percent: fail } = config.appliance.status;
  const level = ratio * 100 < fail ? "fail" : ratio * 100 < warn ? "warn" : "ok";
  return {
    disk: { path, freeBytes, totalBytes },
    check: {
      name: "disk",
      level,
      summary:
        `${formatBytes(freeBytes)} free of ${formatBytes(totalBytes)} (${Math.round(ratio * 100)}%) at ${path}` +
        (level === "ok" ? "" : `: under ${level === "fail" ? fail : warn}% free`),
    },
  };
}
