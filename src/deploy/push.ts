/**
 * `deploy push`: the operator's side. Looks the customer's machine up in customers.yaml, checks
 * the release's signature against the pinned key (so a wrong key fails here, not over there),
 * streams header and binary into `ssh user@machine deploy receive` (the machine's forced command)
 * with a progress bar on a terminal, and returns the receiver's JSON report.
 */
import { createReadStream } from "node:fs";
import type { Customer, Fleet } from "../config/customers.ts";
import { DeployError } from "../lib/errors.ts";
import { type ProgramExit, runProgram } from "../lib/program.ts";
import { releaseSequence } from "./manifest.ts";
import { type ReleaseDir, readReleaseDir } from "./release-dir.ts";
import { encodeReleaseHeader } from "./release-stream.ts";
import { verifyManifest } from "./sign.ts";
import type { RunReport } from "./steps.ts";

export interface PushOptions {
  fleet: Fleet;
  customer: string;
  release: ReleaseDir;
  /** An ssh_config file (ssh -F), e.g. for Tailscale names or tests. */
  sshConfig?: string;
  /** Progress output (a terminal); nothing is drawn without it. */
  progress?: (sent: number, total: number) => void;
}

export interface PushResult {
  customer: string;
  machine: string;
  ok: boolean;
  report?: RunReport;
  /** The receiver's stderr (its one-line error and hint) or ssh's. */
  stderr: string;
}

export function findCustomer(fleet: Fleet, name: string): Customer {
  const customer = fleet.customers.find((c) => c.name === name);
  if (!customer)
    throw new DeployError(
      "PUSH_UNKNOWN_CUSTOMER",
      `push: no customer "${name}" in ${fleet.file}; expected one of ${fleet.customers.map((c) => c.name).join(", ")}`,
    );
  return customer;
}

/** Reads DIR and checks its signature against the fleet's pinned key. */
export async function loadRelease(fleet: Fleet, dir: string): Promise<ReleaseDir> {
  const release = readReleaseDir(dir);
  await verifyManifest(release.jws, fleet.releasePublicKey).catch((error: Error) => {
    throw new DeployError(
      "PUSH_UNVERIFIED",
      `push: ${dir} would be refused by the machines: ${error.message.replace(/^verify: /, "")}`,
      "sign it with the key whose public half is release_public_key",
    );
  });
  return release;
}

/** What the push says about a release first: its order among releases, which the machines enforce. */
export function describeRelease(release: ReleaseDir): string {
  const sequence = releaseSequence(release.manifest);
  return sequence
    ? `${release.manifest.version} (sequence ${sequence})`
    : `${release.manifest.version} (signed before release sequences: a machine that has run a sequenced release refuses it)`;
}

export async function pushRelease(options: PushOptions): Promise<PushResult> {
  const customer = findCustomer(options.fleet, options.customer);
  const args = [
    ...(options.sshConfig ? ["-F", options.sshConfig] : []),
    "-o",
    "BatchMode=yes",
    `${customer.ssh_user}@${customer.machine}`,
    "deploy",
    "receive",
  ];
  const { code, stdout, stderr } = await runProgram(["ssh", ...args], {
    stdin: releaseStream(options.release, options.progress),
  }).catch(
    (error: Error): Pick<ProgramExit, "code" | "stdout" | "stderr"> => ({
      code: 255,
      stdout: "",
      stderr: error.message,
    }),
  );
  let report: RunReport | undefined;
  try {
    report = JSON.parse(stdout) as RunReport;
  } catch {
    report = undefined;
  }
  if (!report && code !== 0)
    throw new DeployError(
      "PUSH_SSH",
      `push: ssh ${customer.ssh_user}@${customer.machine} failed (exit ${code ?? 255}): ${stderr.trim() || "no output"}`,
      "check that the machine is up on Tailscale and that its authorized_keys has the deploy key",
    );
  return {
    customer: customer.name,
    machine: customer.machine,
    ok: code === 0 && report?.ok === true,
    ...(report ? { report } : {}),
    stderr: stderr.trim(),
  };
}

/**
 * Header, then the binary, read as ssh takes it (no more than one chunk ahead). When the receiver
 * refuses early and closes its end, ssh stops reading and the rest is never sent: its report says why.
 */
function releaseStream(
  release: ReleaseDir,
  progress?: (sent: number, total: number) => void,
): ReadableStream<Uint8Array> {
  const total = release.manifest.size;
  let chunks: AsyncIterator<Buffer> | undefined;
  let sent = 0;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controller.enqueue(encodeReleaseHeader(release.jws));
      },
      async pull(controller) {
        chunks ??= createReadStream(release.binary, { highWaterMark: 1 << 20 })[Symbol.asyncIterator]();
        const next = await chunks.next();
        if (next.done) return controller.close();
        sent += next.value.length;
        progress?.(sent, total);
        controller.enqueue(next.value);
      },
      async cancel() {
        await chunks?.return?.();
      },
    },
    { highWaterMark: 1 },
  );
}

/** A one-line progress bar for a terminal: [#########-----------]  45%  45.1/100.2 MB */
export function progressBar(write: (s: string) => void): (sent: number, total: number) => void {
  let drawn = -1;
  return (sent, total) => {
    const percent = Math.floor((sent / total) * 100);
    if (percent === drawn) return;
    drawn = percent;
    const filled = Math.round(percent / 5);
    const mb = (n: number) => (n / 1_048_576).toFixed(1);
    write(
      `\r[${"#".repeat(filled)}${"-".repeat(20 - filled)}] ${String(percent).padStart(3)}%  ${mb(sent)}/${mb(total)} MB${sent >= total ? "\n" : ""}`,
    );
  };
}

/** A short human summary of a receiver's report. */
export function renderReport(result: PushResult): string {
  const r = result.report;
  if (!r) return `${result.customer}: no report\n${result.stderr}\n`;
  const lines = [
    `${result.customer} (${result.machine}): ${r.action} ${r.release ?? "?"} ${r.ok ? "ok" : "FAILED"}${r.color ? `, ${r.color} is ${r.ok ? "live" : "not live"}` : ""} in ${r.totalMs} ms`,
  ];
  for (const step of r.steps)
    lines.push(
      `  ${step.ok ? "ok  " : "FAIL"}  ${step.step.padEnd(8)} ${String(step.ms).padStart(6)} ms  ${step.ok ? (step.detail ?? "") : step.error}`,
    );
  if (!r.ok && result.stderr) lines.push(result.stderr);
  return `${lines.join("\n")}\n`;
}
