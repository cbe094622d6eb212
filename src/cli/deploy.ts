import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadFleet } from "../config/customers.ts";
import { type Config, loadConfig } from "../config/load.ts";
import type { PushResult } from "../deploy/push.ts";
import type { RunOutcome } from "../deploy/receive.ts";
import type { StepReport } from "../deploy/steps.ts";
import {
  CONFIG_OPTION,
  type Command,
  choiceFlag,
  type Invocation,
  JSON_OPTION,
  type Option,
  stringFlag,
} from "../lib/cli.ts";
import { AppError, DeployError, describeError, EXIT, UsageError } from "../lib/errors.ts";
import { describeExit, runProgram, useSystemPathAsRoot } from "../lib/program.ts";
import { writeSecretFile } from "../lib/secret-file.ts";
import { buildInfo } from "../lib/version.ts";

/** Without --release, build one from this checkout (source runs only) with npm run release. */
async function buildReleaseFromSource(): Promise<string> {
  if (buildInfo().commit !== "source")
    throw new UsageError(
      "MISSING_FLAG",
      "deploy push: --release DIR is required when running the compiled binary",
      "build one with `npm run release` in the repository",
    );
  const out = mkdtempSync(join(tmpdir(), "axe-release-"));
  const build = await runProgram(
    [process.execPath, join(import.meta.dir, "..", "..", "build", "release.ts"), "--out", out],
    { stdout: "inherit", stderr: "inherit" },
  );
  if (build.code !== 0)
    throw new DeployError(
      "PUSH_BUILD",
      `push: npm run release failed (${describeExit(build)})`,
      "set AXE_RELEASE_KEY_FILE to the release key, or pass --release DIR",
    );
  return out;
}

const pushCommand: Command = {
  name: "push",
  summary: "send a release to a customer's machine over ssh and print the receiver's steps as they end",
  usage: "--to CUSTOMER | --all [--release DIR] [--force] [--customers FILE] [--ssh-config FILE] [--json]",
  details: `
Looks up the machine and ssh_user in customers.yaml, checks the release's signature against
release_public_key and its binary against the signed sha256 (before anything is sent), and
streams it into \`ssh USER@MACHINE deploy receive\` (the machine's forced command), printing
each of the receiver's steps as it ends. Without --release, builds one from this checkout (npm
run release, key from $AXE_RELEASE_KEY_FILE). --all goes customer by customer and stops at the
first failure. A machine refuses the release it already runs live (both colors would run it,
with nothing to roll back to) unless --force. A progress bar is drawn when stderr is a
terminal. Exit 6 when a deploy fails or is refused.`,
  options: {
    to: { type: "string", value: "CUSTOMER", description: "the customer whose machine gets the release" },
    all: { type: "boolean", description: "every customer in customers.yaml order, stopping at the first failure" },
    release: { type: "string", value: "DIR", description: "a release directory from `npm run release`" },
    force: { type: "boolean", description: "deploy even where this release is already live" },
    customers: { type: "string", value: "FILE", description: "the fleet file (default: ./customers.yaml)" },
    "ssh-config": {
      type: "string",
      value: "FILE",
      description: "an ssh_config for ssh -F (default: $AXE_SSH_CONFIG, else ssh's own)",
    },
    json: JSON_OPTION,
  },
  run: async (inv) => {
    const to = stringFlag(inv, "to");
    if (!to === !inv.values.all)
      throw new UsageError(
        "MISSING_FLAG",
        `${inv.path}: give exactly one of --to CUSTOMER and --all`,
        `see '${inv.path} --help'`,
      );
    const [{ describeRelease, findCustomer, loadRelease, progressBar, pushRelease }, text] = await Promise.all([
      import("../deploy/push.ts"),
      import("../deploy/report-text.ts"),
    ]);
    const fleet = loadFleet(resolve(stringFlag(inv, "customers") ?? "customers.yaml"));
    const names = to ? [findCustomer(fleet, to).name] : fleet.customers.map((c) => c.name);
    const release = await loadRelease(fleet, stringFlag(inv, "release") ?? (await buildReleaseFromSource()));
    const sshConfig = stringFlag(inv, "ssh-config") ?? (process.env.AXE_SSH_CONFIG || undefined);
    const human = !inv.values.json;
    const results: PushResult[] = [];
    for (const customer of names) {
      if (human) process.stderr.write(`pushing ${describeRelease(release)} to ${customer}\n`);
      const progress = human && process.stderr.isTTY ? progressBar((s) => process.stderr.write(s)) : undefined;
      let streamed = 0;
      const result = await pushRelease({
        fleet,
        customer,
        release,
        force: inv.values.force === true,
        ...(sshConfig ? { sshConfig } : {}),
        ...(progress ? { progress } : {}),
        onStep: (step) => {
          streamed++;
          if (human) process.stdout.write(text.renderStep(step));
        },
      }).catch(
        (error: Error): PushResult => ({
          customer,
          machine: findCustomer(fleet, customer).machine,
          ok: false,
          stderr: "",
          error: { message: error.message, ...(error instanceof AppError && error.hint ? { hint: error.hint } : {}) },
        }),
      );
      results.push(result);
      if (human && result.report) {
        // an older receiver sends its steps only with the report
        const late = result.report.steps.slice(streamed).map(text.renderStep).join("");
        process.stdout.write(
          `${late}${result.customer} (${result.machine}): ${text.renderOutcome(result.report)}${text.renderHint(result.report)}`,
        );
      }
      if (!result.ok) break;
    }
    if (!human)
      process.stdout.write(
        `${JSON.stringify(
          results.map(({ customer, machine, ok, report, error }) => ({
            customer,
            machine,
            ok,
            ...(report ? { report } : {}),
            ...(error ? { error } : {}),
          })),
          null,
          2,
        )}\n`,
      );
    const failed = results.find((r) => !r.ok);
    if (!failed) return EXIT.ok;
    const skipped = names.slice(results.length);
    // the reason was printed once already: on the receiver's FAIL line, or here when there is no report
    const reason = failed.error ? `: ${failed.error.message}` : "";
    process.stderr.write(
      describeError({
        message: `deploy to ${failed.customer} failed${reason}${skipped.length ? `; not pushed: ${skipped.join(", ")}` : ""}`,
        hint: failed.error?.hint,
      }),
    );
    return EXIT.deploy;
  },
};

/** `keys release-init --out DIR`: the operator's Ed25519 release key pair (private half 0600, never overwritten). */
export const releaseInitCommand: Command = {
  name: "release-init",
  summary: "make the operator's Ed25519 release key pair",
  usage: "--out DIR",
  details: `
Writes DIR/release.key (PKCS8 PEM, mode 0600; keep it off the customer machines) and
DIR/release.pub (SPKI PEM). Put the public key into customers.yaml as release_public_key, and
sign releases with \`npm run release -- --key-file DIR/release.key\`. Refuses to overwrite a key
(exit 5, as every key error).`,
  options: { out: { type: "string", value: "DIR", description: "directory for release.key and release.pub" } },
  run: async (inv) => {
    const out = resolve(stringFlag(inv, "out", true));
    const keyFile = join(out, "release.key");
    if (existsSync(keyFile))
      throw new (await import("../frame/crypto/errors.ts")).KeyError(
        "RELEASE_KEY_EXISTS",
        `${keyFile} exists; a release key is never overwritten`,
        "choose another --out, or remove the old key on purpose",
      );
    const pair = await (await import("../deploy/sign.ts")).generateReleaseKeyPair();
    writeSecretFile(keyFile, pair.privatePem);
    writeFileSync(join(out, "release.pub"), pair.publicPem, { mode: 0o644 });
    const indented = pair.publicPem
      .trim()
      .split("\n")
      .map((l) => `  ${l}`)
      .join("\n");
    process.stdout.write(
      `wrote ${keyFile} (0600) and ${join(out, "release.pub")}; key id ${pair.kid}\n\nadd to customers.yaml:\n\nrelease_public_key: |\n${indented}\n`,
    );
  },
};

/** The service manager that keeps the colors alive (launchd, systemd or child processes), as appliance.yaml says. */
async function serviceBackendFor(config: Config) {
  return (await import("../services/select.ts")).serviceBackend(config);
}

/** Who deploys: --who (the forced command line carries the SSH key's comment), $AXE_DEPLOY_WHO, else the SSH peer. */
async function whoFrom(inv: Invocation): Promise<string> {
  const flag = stringFlag(inv, "who") ?? process.env.AXE_DEPLOY_WHO;
  if (flag) return flag;
  const peer = process.env.SSH_CLIENT?.split(" ")[0];
  const tailnet = peer ? await tailscaleIdentity(peer) : undefined;
  if (tailnet) return tailnet;
  return `${process.env.USER ?? "unknown"}@${peer ? `ssh:${peer}` : hostname()}`;
}

/** The Tailscale login behind a 100.64.0.0/10 peer address, when `tailscale` is installed. */
async function tailscaleIdentity(ip: string): Promise<string | undefined> {
  const [a, b] = ip.split(".").map(Number);
  if (a !== 100 || b === undefined || b < 64 || b > 127) return undefined;
  const whois = await runProgram(["tailscale", "whois", "--json", ip], {
    deadlineMs: 2000,
    deadlineSignal: "SIGTERM",
  }).catch(() => undefined);
  if (whois?.code !== 0) return undefined;
  try {
    const login = (JSON.parse(whois.stdout) as { UserProfile?: { LoginName?: string } }).UserProfile?.LoginName;
    return login ? `${login} (tailscale ${ip})` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How a receiver or rollback talks: JSON lines on a pipe (`deploy push` reads them, one per step
 * as it ends, then the report), a table on a terminal; `json` prints the whole report at the end.
 */
async function reporter(mode: "lines" | "table" | "json") {
  const [text, { NO_RELEASE_SENT }] = await Promise.all([
    import("../deploy/report-text.ts"),
    import("../deploy/steps.ts"),
  ]);
  const out = (line: string) => process.stdout.write(line);
  return {
    onStep: (step: StepReport) =>
      mode === "lines"
        ? out(`${JSON.stringify({ type: "step", ...step })}\n`)
        : mode === "table"
          ? out(text.renderStep(step))
          : undefined,
    /** The report and the exit code: 0, or 6 when the run failed (nothing sent is not a failure). */
    finish(outcome: RunOutcome): number {
      const report = outcome.report;
      if (mode === "lines") out(`${JSON.stringify({ type: "report", ...report })}\n`);
      else if (mode === "json") out(`${JSON.stringify(report, null, 2)}\n`);
      else out(text.renderOutcome(report) + text.renderHint(report));
      if (report.ok || report.nothingDone === NO_RELEASE_SENT) return EXIT.ok;
      // on a terminal the table already said it; on a pipe (ssh) stderr is the human's copy
      if (mode !== "table") {
        const error = outcome.error;
        process.stderr.write(
          describeError({
            message: error?.message ?? "deploy failed",
            hint: error instanceof AppError ? error.hint : undefined,
          }),
        );
      }
      return EXIT.deploy;
    },
  };
}

const WHO: Option = {
  type: "string",
  value: "NAME",
  description: "who deploys, for the journal (the forced command passes the SSH key's comment)",
};

export const deployCommand: Command = {
  name: "deploy",
  summary: "receive signed releases (SSH forced command), push them, roll back",
  subcommands: [
    {
      name: "receive",
      summary: "read a signed release on stdin, stage it on the passive color, gate, switch",
      usage: "[--config DIR] [--who NAME] [--force] [--allow-downgrade] [--release DIR] < release-stream",
      details: `
Meant as the SSH forced command of the deploy key (see docs/operations.md). Verifies the
signature (customers.yaml release_public_key), target and sha256 before anything runs, and
refuses a release whose signed sequence is older than the newest that has gone live here (a
release signed before sequences counts as 0); then: lock, install, --version, migrate, restart
the passive color, health, MCP check, switch, drain, keep the old color warm. Every step is
appended to {data_dir}/state/deploy-journal.jsonl and written out as it ends: a JSON line per
step and then the report (a table on a terminal). Refuses the release that is already live
(both colors would run it, with nothing to roll back to) unless --force, or \`deploy push
--force\`. A connection that sends nothing (\`ssh machine true\`) is journaled as "no release
sent" and exits 0. Exit 6 when a step fails or the release is refused: the live color keeps
serving. --allow-downgrade takes an older release anyway (the journal says so); it is never
passed through the deploy key's forced command, so run it on the machine, with --release DIR
(a directory from \`npm run release\`) instead of stdin. As root (the forced command's sudo) it
finds launchctl and systemctl only in /usr/bin:/bin:/usr/sbin:/sbin, and refuses before anything
runs (DEPLOY_PATH_UNSAFE) when another account could write appliance.yaml, customers.yaml or
data_dir's releases, current, state or run, or a directory above them.`,
      options: {
        config: CONFIG_OPTION,
        who: WHO,
        force: { type: "boolean", description: "deploy it even when this release is already live" },
        "allow-downgrade": {
          type: "boolean",
          description: "accept a release older than the newest that has gone live here (journaled)",
        },
        release: { type: "string", value: "DIR", description: "read the release from DIR instead of stdin" },
      },
      run: async (inv) => {
        useSystemPathAsRoot(); // the deploy account starts it through sudo, with a PATH of its choosing
        const dir = stringFlag(inv, "release");
        if (!dir && process.stdin.isTTY)
          throw new UsageError(
            "NO_RELEASE_STREAM",
            `${inv.path} reads a release stream on stdin, and stdin is a terminal`,
            "run `axe-appliance deploy push` on the operator's machine instead, or pass --release DIR",
          );
        const config = loadConfig({ dir: stringFlag(inv, "config") });
        const [{ receiveRelease }, { readAhead, streamReleaseDir }] = await Promise.all([
          import("../deploy/receive.ts"),
          import("../deploy/release-stream.ts"),
        ]);
        const out = await reporter(process.stdout.isTTY ? "table" : "lines");
        return out.finish(
          await receiveRelease({
            config,
            input: dir ? streamReleaseDir(resolve(dir)) : readAhead(0),
            who: await whoFrom(inv),
            allowDowngrade: inv.values["allow-downgrade"] === true,
            force: inv.values.force === true,
            onStep: out.onStep,
            backend: await serviceBackendFor(config),
          }),
        );
      },
    },
    pushCommand,
    {
      name: "rollback",
      summary: "switch back to the warm standby color (restarting its release if it is down)",
      usage: "[--config DIR] [--who NAME] [--json]",
      details: `
Prints each step as it ends (lock, standby, health, mcp, switch, drain, standby), then the
outcome; --json prints the report instead. Exit 6 when a step fails: the live color keeps serving.
As root it refuses (DEPLOY_PATH_UNSAFE) a config or data_dir another account could write, as
\`deploy receive\` does.`,
      options: { config: CONFIG_OPTION, who: WHO, json: JSON_OPTION },
      run: async (inv) => {
        const out = await reporter(inv.values.json ? "json" : "table");
        const config = loadConfig({ dir: stringFlag(inv, "config") });
        const { rollback } = await import("../deploy/rollback.ts");
        return out.finish(
          await rollback({
            config,
            who: await whoFrom(inv),
            onStep: out.onStep,
            backend: await serviceBackendFor(config),
          }),
        );
      },
    },
    {
      name: "units",
      summary: "write the launchd plists or systemd units for proxy, blue and green",
      usage: "--out DIR [--backend launchd|systemd] [--binary PATH] [--user NAME] [--config DIR]",
      details: `
Writes ai.axelabs.axe.{proxy,blue,green}.plist (launchd, default on macOS) or .service (systemd)
into DIR, for /Library/LaunchDaemons or /etc/systemd/system. The colors run the
{data_dir}/current/<color> link that deploys move, so the files never change across deploys.`,
      options: {
        out: { type: "string", value: "DIR", description: "where to write the files" },
        backend: {
          type: "string",
          value: "launchd|systemd",
          description: "default: launchd on macOS, systemd elsewhere",
        },
        binary: {
          type: "string",
          value: "PATH",
          description: "the installed binary that runs the proxy (default /opt/axe/bin/axe-appliance)",
        },
        user: { type: "string", value: "NAME", description: "the account the services run as" },
        config: CONFIG_OPTION,
      },
      run: async (inv) => {
        const config = loadConfig({ dir: stringFlag(inv, "config") });
        const [{ launchdPlists }, { systemdUnits }] = await Promise.all([
          import("../services/launchd.ts"),
          import("../services/systemd.ts"),
        ]);
        const kind =
          choiceFlag(inv, "backend", ["launchd", "systemd"] as const) ??
          (process.platform === "darwin" ? "launchd" : "systemd");
        const options = {
          ...(stringFlag(inv, "binary") ? { binary: stringFlag(inv, "binary") } : {}),
          ...(stringFlag(inv, "user") ? { user: stringFlag(inv, "user") } : {}),
        };
        const out = resolve(stringFlag(inv, "out", true));
        mkdirSync(out, { recursive: true });
        for (const unit of kind === "launchd" ? launchdPlists(config, options) : systemdUnits(config, options)) {
          writeFileSync(join(out, unit.file), unit.text, { mode: 0o644 });
          process.stdout.write(`wrote ${join(out, unit.file)}\n`);
        }
      },
    },
    {
      name: "status",
      summary: "live and standby colors, their releases, installed releases, the deploy lock",
      usage: "[--config DIR] [--json]",
      options: { config: CONFIG_OPTION, json: JSON_OPTION },
      run: async (inv) => {
        const { deployStatus, renderStatus } = await import("../deploy/history.ts");
        const status = await deployStatus(loadConfig({ dir: stringFlag(inv, "config") }));
        process.stdout.write(inv.values.json ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status));
      },
    },
    {
      name: "history",
      summary: "the deploy journal: one line per deploy or rollback",
      usage: "[--config DIR] [--json]",
      options: { config: CONFIG_OPTION, json: JSON_OPTION },
      run: async (inv) => {
        const { deployHistory, renderHistory } = await import("../deploy/history.ts");
        const rows = deployHistory(loadConfig({ dir: stringFlag(inv, "config") }));
        process.stdout.write(inv.values.json ? `${JSON.stringify(rows, null, 2)}\n` : renderHistory(rows));
      },
    },
  ],
};
