/**
 * `deploy push`: the operator's side. Looks the customer's machine up in customers.yaml, checks
 * the release before anything is sent (the signature against the pinned key, the binary against
 * the signed sha256, so a wrong key or a damaged copy fails here, not over there), streams header
 * and binary into `ssh user@machine deploy receive` (the machine's forced command) with a
 * progress bar on a terminal, and hands on each of the receiver's steps as it ends.
 */
import { createReadStream, statSync } from "node:fs";
import { z } from "zod";
import type { Customer, Fleet } from "../config/customers.ts";
import { DeployError } from "../lib/errors.ts";
import { parseJsonOrUndefined } from "../lib/json.ts";
import { type ProgramExit, runProgram } from "../lib/program.ts";
import { releaseSequence } from "./manifest.ts";
import { type ReleaseDir, readReleaseDir, sha256File } from "./release-dir.ts";
import { CHUNK_BYTES, encodeReleaseHeader } from "./release-stream.ts";
import { oneLine } from "./report-text.ts";
import { verifyManifest } from "./sign.ts";
import { type RunReport, RunReportSchema, type StepReport, StepReportSchema } from "./steps.ts";

export interface PushOptions {
  fleet: Fleet;
  customer: string;
  release: ReleaseDir;
  /** An ssh_config file (ssh -F), e.g. for Tailscale names or tests. */
  sshConfig?: string;
  /** Deploy even when the machine already runs this release live. */
  force?: boolean;
  /** Progress output (a terminal); nothing is drawn without it. */
  progress?: (sent: number, total: number) => void;
  /** Each receiver step as it ends. */
  onStep?: (step: StepReport) => void;
}

export interface PushResult {
  customer: string;
  machine: string;
  ok: boolean;
  report?: RunReport;
  /** The receiver's stderr (its one-line error and hint) or ssh's. */
  stderr: string;
  /** Why there is no report (ssh failed, the release could not be sent). */
  error?: { message: string; hint?: string };
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

/** Reads DIR, checks its signature against the fleet's pinned key and its binary against the signed size and sha256. */
export async function loadRelease(fleet: Fleet, dir: string): Promise<ReleaseDir> {
  const release = readReleaseDir(dir);
  await verifyManifest(release.jws, fleet.releasePublicKey).catch((error: Error) => {
    throw new DeployError(
      "PUSH_UNVERIFIED",
      `push: ${dir} would be refused by the machines: ${error.message.replace(/^verify: /, "")}`,
      "sign it with the key whose public half is release_public_key",
    );
  });
  const { size, sha256 } = release.manifest;
  const actual = statSync(release.binary).size === size ? sha256File(release.binary) : undefined;
  if (actual !== sha256)
    throw new DeployError(
      "PUSH_SHA256",
      `push: ${release.binary} does not match its signed manifest (${actual ? `sha256 ${actual}, signed ${sha256}` : `${statSync(release.binary).size} bytes, signed ${size}`}); the machines would refuse it after the upload`,
      "build the release again with `npm run release`, or copy the whole release directory again",
    );
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
    stdin: releaseStream(options.release, options.force === true, options.progress),
    onStdoutLine: (line) => {
      const message = parseLine(line);
      if (message?.type === "step") options.onStep?.(message.step);
    },
  }).catch(
    (error: Error): Pick<ProgramExit, "code" | "stdout" | "stderr"> => ({
      code: 255,
      stdout: "",
      stderr: error.message,
    }),
  );
  const report = reportIn(stdout);
  if (!report && code !== 0)
    throw new DeployError(
      "PUSH_SSH",
      `push: ssh ${customer.ssh_user}@${customer.machine} failed (exit ${code ?? 255}): ${oneLine(stderr) || "no output"}`,
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

/** What the receiver prints, one JSON line each: a step as it ended, or the report at the end. */
const ReceiverLineSchema = z.discriminatedUnion("type", [
  StepReportSchema.extend({ type: z.literal("step") }),
  RunReportSchema.extend({ type: z.literal("report") }),
]);
type ReceiverLine = { type: "step"; step: StepReport } | { type: "report"; report: RunReport };

/** One of the receiver's lines, checked against the schema; anything else (ssh's words) is not one. */
function parseLine(line: string): ReceiverLine | undefined {
  const parsed = ReceiverLineSchema.safeParse(parseJsonOrUndefined(line));
  if (!parsed.success) return undefined;
  const { type, ...rest } = parsed.data;
  return type === "step" ? { type, step: rest as StepReport } : { type, report: rest as RunReport };
}

/** The report: the receiver's last line, or (an older receiver) its whole output as one JSON document. */
function reportIn(stdout: string): RunReport | undefined {
  for (const line of stdout.trim().split("\n").reverse()) {
    const message = parseLine(line);
    if (message?.type === "report") return message.report;
  }
  const whole = RunReportSchema.safeParse(parseJsonOrUndefined(stdout));
  return whole.success ? whole.data : undefined;
}

/**
 * Header, then the binary in large reads, read as ssh takes it (no more than one chunk ahead).
 * When the receiver refuses early and closes its end, ssh stops reading and the rest is never
 * sent: its report says why.
 */
function releaseStream(
  release: ReleaseDir,
  force: boolean,
  progress?: (sent: number, total: number) => void,
): ReadableStream<Uint8Array> {
  const total = release.manifest.size;
  let chunks: AsyncIterator<Buffer> | undefined;
  let sent = 0;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controller.enqueue(encodeReleaseHeader(release.jws, force ? { force } : {}));
      },
      async pull(controller) {
        chunks ??= createReadStream(release.binary, { highWaterMark: CHUNK_BYTES })[Symbol.asyncIterator]();
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
