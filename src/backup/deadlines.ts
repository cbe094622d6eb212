/**
 * How long each external call of a backup may take: from `backup.deadlines` in appliance.yaml, or
 * sized to the data (the local repository's last known size at `rate_mb_s`, with a floor). At the
 * deadline restic gets SIGINT (it stops without saving), SIGKILL after a grace period, and the tier
 * is recorded as failed; the other tiers still run. A whole run is bounded by the sum of the
 * deadlines of its steps: a runner lock older than that belongs to a hung runner and is taken over.
 */
import type { BackupSettings } from "../config/sections.ts";

export type CallKind = "quick" | "backup" | "copy" | "check" | "prune";

const MINUTE = 60;
const FLOORS: Record<Exclude<CallKind, "quick">, number> = {
  backup: 30 * MINUTE,
  copy: 10 * MINUTE,
  check: 30 * MINUTE,
  prune: 30 * MINUTE,
};

/** The kind of a restic call, from its subcommand (leading `-o key=value` options skipped). */
export function callKind(args: string[]): CallKind {
  let i = 0;
  while (args[i] === "-o") i += 2;
  const command = args[i];
  if (command === "backup") return "backup";
  if (command === "copy") return "copy";
  if (command === "check" || command === "restore" || command === "dump") return "check";
  if (command === "prune") return "prune";
  if (command === "repair") return args[i + 1] === "packs" ? "check" : "prune";
  return "quick";
}

/** Seconds a call of `kind` may take; `remote` (the ring over ssh) gives quick calls more room. */
export function deadlineSeconds(
  settings: BackupSettings,
  kind: CallKind,
  sizeBytes: number | undefined,
  remote = false,
): number {
  const configured = settings.deadlines[kind];
  if (configured !== undefined) return configured;
  if (kind === "quick") return remote ? 10 * MINUTE : 2 * MINUTE;
  const bySize = (sizeBytes ?? 0) / (settings.deadlines.rate_mb_s * 1_000_000);
  return Math.ceil(Math.max(FLOORS[kind], bySize));
}

/** The longest a whole `backup run --tier all` may take: the sum of its steps' deadlines. */
export function runBudgetSeconds(settings: BackupSettings, sizeBytes: number | undefined): number {
  const d = (kind: CallKind, remote = false) => deadlineSeconds(settings, kind, sizeBytes, remote);
  // dump + files; copy and check to ring and cold; forget + prune on three tiers; the rest of the quick calls
  return 2 * d("backup") + 2 * d("copy") + 2 * d("check") + 3 * d("prune") + 6 * d("quick", true) + 6 * d("quick");
}
