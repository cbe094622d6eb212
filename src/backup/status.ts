/**
 * The backup status file ({data_dir}/state/backup.json): per tier, the last attempt, the last
 * good snapshot, the last check, the last drill and the repository size. Written atomically by
 * the runner, read and validated by `backup status`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../lib/atomic-write.ts";
import { BackupError } from "../lib/errors.ts";
import type { Repo, Snapshot, TierName } from "./restic.ts";

const Outcome = z.object({
  time: z.string(),
  ok: z.boolean(),
  error: z.string().optional(),
  code: z.string().optional(),
});

const SnapshotRef = z.object({
  time: z.string(),
  id: z.string(),
  dumpId: z.string().optional(),
  bytesAdded: z.number().optional(),
});

const TierStatusSchema = z.object({
  lastAttempt: Outcome.optional(),
  /** The newest snapshot known good: its own time, not the time it was copied. */
  lastSnapshot: SnapshotRef.optional(),
  /** Set when a check, verify or prune found damage; retention pauses until `backup repair` or a full verify passes. */
  damaged: z.object({ time: z.string(), reason: z.string(), packs: z.array(z.string()).optional() }).optional(),
  /** The newest snapshot taken while the tier was damaged: it may share data with a damaged pack. */
  unproven: SnapshotRef.optional(),
  /** A prune failed after forget removed snapshots: the next retention prunes even if it forgets nothing. */
  pruneDue: z.boolean().optional(),
  lastCheck: Outcome.optional(),
  lastDrill: Outcome.extend({ snapshot: z.string().optional() }).optional(),
  lastProvenRestore: z.object({ time: z.string(), snapshot: z.string() }).optional(),
  /** The point-in-time drill: restored to a restore point it made, figures equal to the live ones there. */
  lastProvenPitr: z.object({ time: z.string(), point: z.string(), tables: z.number() }).optional(),
  size: z.number().optional(),
  /** Why the last run did not touch this tier (cold volume absent, ring disabled). */
  skipped: z.object({ time: z.string(), reason: z.string() }).optional(),
});

export const StatusFileSchema = z.object({
  version: z.literal(1),
  updated: z.string(),
  tiers: z.object({
    local: TierStatusSchema.optional(),
    ring: TierStatusSchema.optional(),
    cold: TierStatusSchema.optional(),
  }),
});

export type TierStatus = z.infer<typeof TierStatusSchema>;
export type StatusFile = z.infer<typeof StatusFileSchema>;

export function statusPath(stateDir: string): string {
  return join(stateDir, "backup.json");
}

export function readStatus(stateDir: string): StatusFile {
  const path = statusPath(stateDir);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return { version: 1, updated: new Date(0).toISOString(), tiers: {} };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new BackupError(
      "STATUS_INVALID",
      `${path}: not JSON`,
      `move it aside; the next \`axe-appliance backup run\` writes a new one`,
    );
  }
  const parsed = StatusFileSchema.safeParse(raw);
  if (!parsed.success)
    throw new BackupError(
      "STATUS_INVALID",
      `${path}: ${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message}`,
      "move it aside; the next `axe-appliance backup run` writes a new one",
    );
  return parsed.data;
}

/** Read, change one tier, write back atomically. */
export function updateTier(stateDir: string, tier: TierName, change: (current: TierStatus) => TierStatus): void {
  const status = readStatus(stateDir);
  status.tiers[tier] = change(status.tiers[tier] ?? {});
  status.updated = new Date().toISOString();
  writeFileAtomic(statusPath(stateDir), `${JSON.stringify(status, null, 2)}\n`, { mode: 0o600 });
}

/** Records a new snapshot: "last good" on a sound tier, "unproven" on one marked damaged. */
export function recordSnapshot(stateDir: string, tier: TierName, snapshot: z.infer<typeof SnapshotRef>): void {
  updateTier(stateDir, tier, (t) => ({
    ...t,
    lastAttempt: { time: new Date().toISOString(), ok: true },
    ...(t.damaged ? { unproven: snapshot } : { lastSnapshot: snapshot }),
    skipped: undefined,
  }));
}

/** Marks a tier damaged (the first reason stays: it is the evidence's). */
export function markDamaged(stateDir: string, tier: TierName, reason: string, packs: string[] = []): void {
  updateTier(stateDir, tier, (t) => ({
    ...t,
    damaged: t.damaged
      ? { ...t.damaged, packs: [...new Set([...(t.damaged.packs ?? []), ...packs])] }
      : { time: new Date().toISOString(), reason, ...(packs.length ? { packs } : {}) },
  }));
}

/** A full read of the repository passed: the damage is gone and the newest snapshot is proven. */
export function clearDamaged(stateDir: string, tier: TierName): void {
  updateTier(stateDir, tier, (t) => ({
    ...t,
    damaged: undefined,
    unproven: undefined,
    ...(t.unproven && (!t.lastSnapshot || t.unproven.time > t.lastSnapshot.time) ? { lastSnapshot: t.unproven } : {}),
  }));
}

export interface TierReport {
  tier: TierName;
  enabled: boolean;
  lastGood?: string;
  ageHours?: number;
  limitHours: number;
  lastCheck?: string;
  lastCheckOk?: boolean;
  lastDrill?: string;
  lastDrillOk?: boolean;
  lastProvenRestore?: string;
  size?: number;
  damaged?: string;
  unproven?: string;
  problems: string[];
  /** Worth a look but not a failure (yellow): a cold SSD that was never set up. */
  notes: string[];
}

/** Judges each tier against its age limit; a problem list per tier says what is wrong. */
export function reportTiers(
  status: StatusFile,
  limits: Array<{ tier: TierName; enabled: boolean; limitHours: number }>,
  now = new Date(),
): TierReport[] {
  return limits.map(({ tier, enabled, limitHours }) => {
    const t = status.tiers[tier] ?? {};
    const problems: string[] = [];
    const notes: string[] = [];
    const ageHours = t.lastSnapshot ? (now.getTime() - Date.parse(t.lastSnapshot.time)) / 3_600_000 : undefined;
    const neverSetUp = tier === "cold" && !t.lastSnapshot && !t.lastAttempt && !t.lastCheck;
    if (enabled && neverSetUp)
      notes.push("not set up: no cold SSD seen yet; mount it and run `axe-appliance backup run --tier cold`");
    else if (enabled) {
      if (t.damaged)
        problems.push(
          `damaged since ${t.damaged.time.slice(0, 16)}: ${t.damaged.reason}; retention is paused until \`axe-appliance backup repair --tier ${tier}\``,
        );
      if (t.unproven)
        problems.push(
          `unproven: snapshot ${t.unproven.id.slice(0, 8)} (${t.unproven.time.slice(0, 16)}) was taken after the damage was found and may share data with it`,
        );
      // the cold tier is late because its SSD was not plugged in, not because nobody ran a backup
      const plugIn =
        "plug in the cold SSD: the next backup run (or `axe-appliance backup run --tier cold`) copies to it";
      if (ageHours === undefined)
        problems.push(
          tier === "cold"
            ? `no copy on the cold SSD yet: ${plugIn}`
            : "no good snapshot yet: run `axe-appliance backup run`",
        );
      else if (ageHours > limitHours)
        problems.push(
          `last good snapshot is ${formatAge(ageHours)} old, over the limit of ${formatAge(limitHours)}${tier === "cold" ? `: ${plugIn}` : ""}`,
        );
      if (t.lastAttempt && !t.lastAttempt.ok)
        problems.push(`last run failed: ${t.lastAttempt.error ?? "unknown error"}`);
      if (t.lastCheck && !t.lastCheck.ok) problems.push(`last check failed: ${t.lastCheck.error ?? "unknown error"}`);
      if (t.lastDrill && !t.lastDrill.ok)
        problems.push(`last restore drill failed: ${t.lastDrill.error ?? "unknown error"}`);
    }
    return {
      tier,
      enabled,
      lastGood: t.lastSnapshot?.time,
      ageHours,
      limitHours,
      lastCheck: t.lastCheck?.time,
      lastCheckOk: t.lastCheck?.ok,
      lastDrill: t.lastDrill?.time,
      lastDrillOk: t.lastDrill?.ok,
      lastProvenRestore: t.lastProvenRestore?.time,
      size: t.size,
      ...(t.damaged ? { damaged: t.damaged.time } : {}),
      ...(t.unproven ? { unproven: t.unproven.time } : {}),
      problems,
      notes,
    };
  });
}

/** Ages in one unit everywhere (status, the page, `backup status`, fleet): hours. */
export function formatAge(hours: number): string {
  return hours < 100 ? `${hours.toFixed(1)}h` : `${Math.round(hours)}h`;
}

export function renderReport(reports: TierReport[]): string {
  const lines = ["tier   last good            age      limit   last check           last proven restore  size"];
  const cell = (s: string | undefined, w: number) => (s ?? "-").padEnd(w);
  for (const r of reports) {
    if (!r.enabled) {
      lines.push(`${r.tier.padEnd(6)} disabled`);
      continue;
    }
    const check = r.lastCheck ? `${r.lastCheck.slice(0, 16)}${r.lastCheckOk ? "" : " FAIL"}` : undefined;
    lines.push(
      `${r.tier.padEnd(6)} ${cell(r.lastGood?.slice(0, 19), 20)} ${cell(r.ageHours === undefined ? undefined : formatAge(r.ageHours), 8)} ${cell(formatAge(r.limitHours), 7)} ${cell(check, 20)} ${cell(r.lastProvenRestore?.slice(0, 19), 20)} ${r.size === undefined ? "-" : formatBytes(r.size)}`,
    );
    for (const p of r.problems) lines.push(`       ! ${p}`);
    for (const n of r.notes) lines.push(`       - ${n}`);
  }
  return `${lines.join("\n")}\n`;
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** A snapshot's time as the operator reads it: UTC, to the second. */
export function snapshotTime(time: string | number): string {
  const ms = typeof time === "number" ? time : Date.parse(time);
  return Number.isNaN(ms) ? String(time) : `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/**
 * The ring peer (another customer's machine) or a cold SSD cannot forge our encrypted snapshots,
 * but it can serve an older copy of the repository: its newest snapshot of this host is then older
 * than the newest this machine copied there (state/backup.json). `latest` from it would be stale
 * data taken for the newest, so it is refused (a snapshot named by id is still restored), and a
 * copy after which the tier holds nothing newer fails rather than record the older snapshot.
 */
export function assertNotOlderThanSeen(
  stateDir: string,
  host: string,
  repo: Pick<Repo, "tier" | "repository">,
  snapshots: ReadonlyArray<Pick<Snapshot, "time" | "hostname">>,
): void {
  if (repo.tier === "local") return;
  const tier = readStatus(stateDir).tiers[repo.tier];
  const seen = [tier?.lastSnapshot, tier?.unproven]
    .filter((s) => s !== undefined)
    .sort((a, b) => Date.parse(a.time) - Date.parse(b.time))
    .at(-1);
  const seenMs = seen ? Date.parse(seen.time) : Number.NaN;
  if (!seen || Number.isNaN(seenMs)) return;
  const times = snapshots.filter((s) => s.hostname === host).map((s) => Date.parse(s.time));
  const newest = times.length ? Math.max(...times) : undefined;
  if (newest !== undefined && newest >= seenMs) return;
  throw new BackupError(
    "STALE_COPY",
    `${repo.tier}: the newest snapshot of host ${host} in ${repo.repository} ${newest === undefined ? "does not exist" : `was taken ${snapshotTime(newest)}`}, but this machine copied snapshot ${seen.id} of ${snapshotTime(seen.time)} there: the repository serves an older copy (a peer or a disk put back to an earlier state), and its latest is not the newest`,
    "restore from another tier with --tier, or name a snapshot with --snapshot ID to take it knowingly. `axe-appliance backup run` copies the newer snapshots again; if the run fails like this too, the peer (or the disk) keeps losing them: ask its operator",
  );
}
