/**
 * The release floor: the newest release (by its signed sequence) that has gone live on this
 * machine. `deploy receive` refuses a release older than it, so a signed but superseded release
 * (one with a known hole) cannot be replayed by whoever holds the deploy key; going back on purpose
 * is `deploy rollback` (the warm standby) or `deploy receive --allow-downgrade`, journaled.
 * Kept in {data_dir}/state/release-floor.json, and never lower than what a color runs.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../lib/atomic-write.ts";
import { DeployError } from "../lib/errors.ts";
import { readColors } from "./colors.ts";
import { LEGACY_RELEASE_FORMAT, type Manifest, releaseSequence } from "./manifest.ts";
import { findRelease } from "./releases.ts";

export interface ReleaseFloor {
  sequence: number;
  version: string;
}

const FloorSchema = z.object({ sequence: z.number().int().nonnegative(), version: z.string(), since: z.string() });

export function floorFile(dataDir: string): string {
  return join(dataDir, "state", "release-floor.json");
}

/** The highest of the recorded floor and the releases the colors point at; undefined on a fresh machine. */
export function readFloor(dataDir: string): ReleaseFloor | undefined {
  const candidates: ReleaseFloor[] = [];
  const recorded = readRecorded(floorFile(dataDir));
  if (recorded) candidates.push(recorded);
  const colors = readColors(dataDir);
  for (const pointer of [colors.blue, colors.green]) {
    const installed = pointer && findRelease(dataDir, pointer.version);
    if (installed) candidates.push({ sequence: releaseSequence(installed.manifest), version: installed.version });
  }
  return candidates.sort((a, b) => b.sequence - a.sequence)[0];
}

function readRecorded(file: string): ReleaseFloor | undefined {
  if (!existsSync(file)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    value = undefined;
  }
  const parsed = FloorSchema.safeParse(value);
  if (!parsed.success)
    throw new DeployError(
      "RELEASE_FLOOR",
      `${file} is not a release floor ({"sequence", "version", "since"})`,
      "put it back from a backup, or remove it: the floor then falls back to the releases blue and green run",
    );
  return { sequence: parsed.data.sequence, version: parsed.data.version };
}

/**
 * Throws RELEASE_DOWNGRADE when `manifest` is older than the floor; with `allow`, returns the note
 * the journal keeps instead. The same sequence again (a re-push) is not older.
 */
export function checkNotOlder(manifest: Manifest, floor: ReleaseFloor | undefined, allow = false): string | undefined {
  const sequence = releaseSequence(manifest);
  if (!floor || sequence >= floor.sequence) return undefined;
  if (allow) return `downgrade allowed: sequence ${sequence} is older than ${floor.version}'s ${floor.sequence}`;
  const what =
    manifest.format === LEGACY_RELEASE_FORMAT
      ? `release ${manifest.version} was signed before release sequences (${LEGACY_RELEASE_FORMAT}), and release ${floor.version} (sequence ${floor.sequence}) has gone live here`
      : `release ${manifest.version} (sequence ${sequence}) is older than release ${floor.version} (sequence ${floor.sequence}), which has gone live here`;
  throw new DeployError(
    "RELEASE_DOWNGRADE",
    `verify: ${what}; nothing was installed or run`,
    "to go back, `axe-appliance deploy rollback` makes the warm standby live; to install an older release on purpose, run `sudo axe-appliance deploy receive --allow-downgrade --release DIR` on the machine (journaled)",
  );
}

/** After a release went live: the floor rises to it (never falls, not even after an allowed downgrade). */
export function raiseFloor(dataDir: string, manifest: Manifest): void {
  const current = readFloor(dataDir);
  const sequence = releaseSequence(manifest);
  if (current && current.sequence >= sequence) return;
  const floor = { sequence, version: manifest.version, since: new Date().toISOString() };
  writeFileAtomic(floorFile(dataDir), `${JSON.stringify(floor, null, 2)}\n`, { mode: 0o644 });
}
