/** `deploy status` and `deploy history`: what runs where, and what the journal says happened. */
import type { Config } from "../config/load.ts";
import { COLORS } from "../lib/colors.ts";
import { printableLines } from "../lib/terminal-text.ts";
import { type ProxyStatus, proxyStatus } from "../proxy/admin-client.ts";
import { proxySettings } from "../proxy/settings.ts";
import { type ColorsState, readColors } from "./colors.ts";
import type { JournalEntry } from "./journal.ts";
import { type DeployLockStatus, inspectDeployLock } from "./lock.ts";
import { journalFor, lockFileFor } from "./receive.ts";
import { listReleases } from "./releases.ts";
import { oneLine } from "./report-text.ts";

export interface DeployStatus {
  live?: string;
  proxy: ProxyStatus | { error: string };
  colors: ColorsState;
  releases: Array<{ version: string; installedAt: string; commit: string }>;
  lock?: DeployLockStatus;
}

export async function deployStatus(config: Config): Promise<DeployStatus> {
  const proxy = await proxyStatus(proxySettings(config).adminSocket).catch((error: Error) => ({
    error: error.message,
  }));
  const lock = inspectDeployLock(lockFileFor(config));
  return {
    ...("live" in proxy ? { live: proxy.live } : {}),
    proxy,
    colors: readColors(config.paths.data),
    releases: listReleases(config.paths.data).map((r) => ({
      version: r.version,
      installedAt: r.installedAt.toISOString(),
      commit: r.manifest.commit,
    })),
    ...(lock ? { lock } : {}),
  };
}

export function renderStatus(status: DeployStatus): string {
  const lines: string[] = [];
  if ("error" in status.proxy) lines.push(`proxy: not reachable (${status.proxy.error})`);
  for (const color of COLORS) {
    const seen = "error" in status.proxy ? undefined : status.proxy.colors[color];
    const role = status.live === undefined ? "" : status.live === color ? "live   " : "standby";
    const health = seen
      ? seen.healthy
        ? "healthy"
        : `unhealthy${seen.last_error ? ` (${seen.last_error})` : ""}`
      : "unknown";
    lines.push(`${color.padEnd(5)}  ${role}  release ${status.colors[color]?.version ?? "(none)"}  ${health}`);
  }
  lines.push(`installed releases (newest first): ${status.releases.map((r) => r.version).join(", ") || "none"}`);
  if (status.lock)
    lines.push(
      `deploy lock: pid ${status.lock.pid} (${status.lock.alive ? "running" : "dead: the next deploy takes it over"}), ${status.lock.version} by ${status.lock.who}`,
    );
  // the lock's name is whatever the deploy account ran the receiver under, the proxy's error what a color's port said
  return `${printableLines(lines.join("\n"))}\n`;
}

export interface HistoryRow {
  id: string;
  action: string;
  who: string;
  started: string;
  release?: string;
  ok?: boolean;
  failedStep?: string;
  error?: string;
  /** The run changed nothing on purpose (no release sent, already live): not a failed deploy. */
  nothingDone?: string;
  totalMs?: number;
  steps: Array<{ step: string; ok: boolean; ms: number }>;
}

/** One row per deploy or rollback, oldest first; a run with no end line was interrupted. */
export function deployHistory(config: Config): HistoryRow[] {
  const rows = new Map<string, HistoryRow>();
  for (const entry of journalFor(config).read()) {
    const row = rows.get(entry.id) ?? {
      id: entry.id,
      action: entry.action,
      who: entry.who,
      started: entry.time,
      steps: [],
    };
    rows.set(entry.id, row);
    if (typeof entry.release === "string") row.release = entry.release;
    if (entry.kind === "step")
      row.steps.push({ step: String(entry.step), ok: entry.ok === true, ms: Number(entry.ms) });
    if (entry.kind === "end") endRow(row, entry);
  }
  return [...rows.values()];
}

function endRow(row: HistoryRow, entry: JournalEntry): void {
  row.ok = entry.ok === true;
  row.totalMs = Number(entry.totalMs);
  if (typeof entry.nothingDone === "string") row.nothingDone = entry.nothingDone;
  const error = entry.error as { step?: string; message?: string } | undefined;
  if (error) {
    row.failedStep = error.step;
    row.error = error.message;
  }
}

export function renderHistory(rows: HistoryRow[]): string {
  if (!rows.length) return "no deploys yet\n";
  // one row per run, whatever its error says (a multi-line message is joined with " / ")
  return `${rows
    .map((r) => {
      const outcome =
        r.ok === undefined
          ? "INTERRUPTED"
          : r.ok
            ? "ok"
            : r.nothingDone
              ? `nothing done: ${r.nothingDone}`
              : `FAILED at ${r.failedStep}: ${oneLine(r.error ?? "?")}`;
      return `${oneLine(r.started)}  ${oneLine(r.action).padEnd(8)}  ${oneLine(r.release ?? "?").padEnd(28)}  ${oneLine(r.who)}  ${outcome}${r.totalMs ? `  (${r.totalMs} ms)` : ""}`;
    })
    .join("\n")}\n`;
}
