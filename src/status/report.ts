/**
 * The status report of one machine: what `status --json` prints and what `fleet status` reads
 * back over ssh, so it is a zod schema (a boundary). Every check has a level; the worst one is
 * the machine's level and picks the exit code.
 */
import { z } from "zod";
import { COLORS } from "../lib/colors.ts";
import { EXIT, type ExitCode } from "../lib/errors.ts";

export const LEVELS = ["ok", "warn", "fail"] as const;
export const LevelSchema = z.enum(LEVELS);
export type Level = z.infer<typeof LevelSchema>;

/** `status` exit codes: 0 green, 11 yellow (needs attention), 12 red (something is down). */
export const STATUS_EXIT: Record<Level, ExitCode> = { ok: EXIT.ok, warn: EXIT.yellow, fail: EXIT.red };

export const CheckSchema = z.object({
  /** Stable name: proxy, colors, color:blue, color:green, database, deploy, backup:local, audit, metadata, disk. */
  name: z.string(),
  level: LevelSchema,
  summary: z.string(),
});
export type Check = z.infer<typeof CheckSchema>;

const ColorReport = z.object({
  live: z.boolean(),
  healthy: z.boolean(),
  /** Release the color reports on /healthz, else the one colors.json points at. */
  release: z.string().nullable(),
  error: z.string().nullable(),
});
export type ColorReport = z.infer<typeof ColorReport>;

export const BackupTierReportSchema = z.object({
  tier: z.string(),
  enabled: z.boolean(),
  lastGood: z.string().nullable(),
  ageHours: z.number().nullable(),
  limitHours: z.number(),
  problems: z.array(z.string()),
});
export type BackupTierReport = z.infer<typeof BackupTierReportSchema>;

export const StatusReportSchema = z.object({
  version: z.literal(1),
  customer: z.string(),
  machine: z.string(),
  time: z.string(),
  level: LevelSchema,
  live: z.enum(COLORS).nullable(),
  release: z.string().nullable(),
  colors: z.object({ blue: ColorReport, green: ColorReport }),
  database: z.object({ reachable: z.boolean(), migration: z.number().nullable(), via: z.string() }),
  lastDeploy: z
    .object({
      action: z.string(),
      release: z.string().nullable(),
      ok: z.boolean().nullable(),
      started: z.string(),
      who: z.string(),
      error: z.string().nullable(),
    })
    .nullable(),
  backup: z.array(BackupTierReportSchema),
  metadata: z.object({ url: z.string(), ok: z.boolean(), detail: z.string() }),
  disk: z.object({ path: z.string(), freeBytes: z.number(), totalBytes: z.number() }).nullable(),
  checks: z.array(CheckSchema),
});
export type StatusReport = z.infer<typeof StatusReportSchema>;

/** The worst of the levels; ok for none. */
export function worstLevel(levels: Iterable<Level>): Level {
  let worst: Level = "ok";
  for (const level of levels) if (LEVELS.indexOf(level) > LEVELS.indexOf(worst)) worst = level;
  return worst;
}
