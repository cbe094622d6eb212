/**
 * `fleet status`: `axe-appliance status --json` on every customer's machine over ssh, all at
 * once, each bounded by a timeout. A machine that cannot be reached, times out or answers
 * without a report is a row that says so; it never stops the others.
 *
 * @example
 * const rows = await fleetStatus(loadFleet("customers.yaml").customers, { timeoutMs: 20_000 });
 */
import type { Customer } from "../config/customers.ts";
import { parseJsonOrUndefined } from "../lib/json.ts";
import { describeExit, type ProgramExit, runProgram } from "../lib/program.ts";
import { type Level, type StatusReport, StatusReportSchema } from "./report.ts";

export interface FleetOptions {
  /** ssh -F FILE: Tailscale names, keys, or a test sshd. */
  sshConfig?: string;
  /** More ssh arguments, e.g. ["-o", "ConnectTimeout=5"]. */
  sshOptions?: string[];
  /** Per machine, from spawning ssh to its exit. */
  timeoutMs: number;
  /** What runs on the machine (a forced command may replace it). */
  remoteCommand?: string[];
}

export type FleetState = Level | "unreachable";

export interface FleetRow {
  customer: string;
  machine: string;
  state: FleetState;
  report?: StatusReport;
  /** Why there is no report: ssh's or the remote command's last words. */
  error?: string;
}

export const DEFAULT_REMOTE_COMMAND = ["axe-appliance", "status", "--json"];

export function fleetStatus(customers: Customer[], options: FleetOptions): Promise<FleetRow[]> {
  return Promise.all(customers.map((customer) => machineStatus(customer, options)));
}

async function machineStatus(customer: Customer, options: FleetOptions): Promise<FleetRow> {
  const row = { customer: customer.name, machine: customer.machine };
  const args = [
    ...(options.sshConfig ? ["-F", options.sshConfig] : []),
    "-o",
    "BatchMode=yes",
    ...(options.sshOptions ?? []),
    `${customer.ssh_user}@${customer.machine}`,
    "--",
    ...(options.remoteCommand ?? DEFAULT_REMOTE_COMMAND),
  ];
  const run = await runSsh(args, options.timeoutMs);
  if (run.timedOut) return { ...row, state: "unreachable", error: `no answer within ${options.timeoutMs} ms` };
  const parsed = StatusReportSchema.safeParse(parseJsonOrUndefined(run.stdout));
  if (parsed.success) return { ...row, state: parsed.data.level, report: parsed.data };
  // 255 is ssh's own failure (down, refused, key); anything else ran on the machine but was not our `status --json`
  const said = lastLine(run.stderr) || describeExit(run);
  if (run.code === 255 || run.code === null) return { ...row, state: "unreachable", error: said };
  return {
    ...row,
    state: "unreachable",
    error: `no status report (${said}); does this key's forced command run \`axe-appliance status --json\` of a current release?`,
  };
}

/** ssh, killed at the timeout; a missing ssh is ssh's own failure (255) with the reason. */
function runSsh(
  args: string[],
  timeoutMs: number,
): Promise<Pick<ProgramExit, "code" | "signal" | "timedOut" | "stdout" | "stderr">> {
  return runProgram(["ssh", ...args], { deadlineMs: timeoutMs, deadlineSignal: "SIGKILL" }).catch((error: Error) => ({
    code: 255,
    signal: null,
    timedOut: false,
    stdout: "",
    stderr: `${error.message}\n`,
  }));
}

function lastLine(text: string): string {
  const lines = text
    .trim()
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith("{"));
  return (lines[lines.length - 1] ?? "").slice(0, 200);
}
