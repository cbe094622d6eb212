/** `fleet status` as one table: a row per machine, worst state first is left to the reader (config order). */
import { formatAge } from "../backup/status.ts";
import type { Color } from "../lib/colors.ts";
import { printable } from "../lib/terminal-text.ts";
import type { FleetRow } from "./fleet.ts";
import { paint, useColor } from "./render-text.ts";
import type { Level } from "./report.ts";

const STATE: Record<FleetRow["state"], string> = {
  ok: "GREEN",
  warn: "YELLOW",
  fail: "RED",
  unreachable: "UNREACHABLE",
};

export function renderFleetTable(rows: FleetRow[], color = useColor()): string {
  const header = [
    "CUSTOMER",
    "MACHINE",
    "STATE",
    "LIVE",
    "RELEASE",
    "BLUE/GREEN",
    "DATABASE",
    "LAST DEPLOY",
    "BACKUP local/ring/cold",
    "PROBLEMS",
  ];
  const table = rows.map((row) => cells(row).map(printable)); // every cell came from that machine
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (r: string[], level?: Level) =>
    r
      .map((c, i) =>
        i === 2 && level ? paint(level, c.padEnd(widths[i]!), color) : i === r.length - 1 ? c : c.padEnd(widths[i]!),
      )
      .join("  ")
      .trimEnd();
  return `${[
    line(header),
    ...table.map((r, i) => line(r, rows[i]!.state === "unreachable" ? "fail" : rows[i]!.state)),
  ].join("\n")}\n`;
}

function cells(row: FleetRow): string[] {
  const r = row.report;
  if (!r) return [row.customer, row.machine, STATE.unreachable, "-", "-", "-", "-", "-", "-", row.error ?? ""];
  const health = (c: Color) => (r.colors[c].healthy ? "up" : "down");
  const age = (tier: string) => {
    const t = r.backup.find((b) => b.tier === tier);
    if (!t?.enabled) return "off";
    return t.ageHours === null ? "none" : formatAge(t.ageHours);
  };
  const deploy = r.lastDeploy
    ? `${r.lastDeploy.release ?? "?"} ${r.lastDeploy.ok === true ? "ok" : r.lastDeploy.ok === false ? "FAILED" : "INTERRUPTED"}`
    : "none";
  const problems = r.checks
    .filter((c) => c.level !== "ok")
    .map((c) => `${c.name}: ${c.summary}`)
    .join("; ");
  return [
    row.customer,
    row.machine,
    STATE[row.state],
    r.live ?? "?",
    r.release ?? "?",
    `${health("blue")}/${health("green")}`,
    r.database.reachable ? `ok m${r.database.migration ?? "?"}` : "DOWN",
    deploy,
    `${age("local")}/${age("ring")}/${age("cold")}`,
    problems,
  ];
}
