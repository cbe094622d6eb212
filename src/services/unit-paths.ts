/**
 * The stable paths launchd and systemd units name, so a unit never changes across deploys:
 * {data_dir}/current/<color> is a symlink to releases/<version>, and {data_dir}/current/<color>.env
 * says AXE_RELEASE=<version>. The deploy receiver repoints both (atomically) before a restart.
 */
import { mkdirSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { Color } from "../deploy/colors.ts";
import { writeFileAtomic } from "../lib/atomic-write.ts";

export function currentLink(dataDir: string, color: Color): string {
  return join(dataDir, "current", color);
}

export function currentEnvFile(dataDir: string, color: Color): string {
  return join(dataDir, "current", `${color}.env`);
}

/** Points current/<color> at releases/<version> and rewrites current/<color>.env. */
export function linkCurrent(dataDir: string, color: Color, version: string): void {
  const dir = join(dataDir, "current");
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const link = currentLink(dataDir, color);
  const temp = `${link}.tmp-${process.pid}`;
  rmSync(temp, { force: true });
  symlinkSync(join("..", "releases", version), temp);
  renameSync(temp, link);
  writeFileAtomic(currentEnvFile(dataDir, color), `AXE_RELEASE=${version}\n`, { mode: 0o644, dirMode: 0o755 });
}
