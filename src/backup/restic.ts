/**
 * The restic program: find it, read its version, run it against one repository with the
 * password from a 0600 file (RESTIC_PASSWORD_FILE, never argv), and turn its failures into
 * BackupErrors that say what to do.
 *
 * @example
 * const restic = await Restic.detect("restic", { cacheDir });
 * const snaps = await restic.snapshots(repo, ["--tag", "db"]);
 */
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { z } from "zod";
import type { TierName } from "../config/sections.ts";
import { BackupError } from "../lib/errors.ts";
import { type ProgramExit, type ProgramOptions, ProgramStartError, runProgram } from "../lib/program.ts";
import { printableLines } from "../lib/terminal-text.ts";
import { KEY_REFUSED } from "./sftp-guard.ts";

export { TIERS, type TierName } from "../config/sections.ts";

/** One restic repository: where it is and which 0600 file holds its password. */
export interface Repo {
  tier: TierName;
  repository: string;
  passwordFile: string;
  /** Extended options (`-o key=value`), such as sftp.command for the ring. */
  options?: string[];
  /** The ring's ssh ConnectTimeout, seconds: what "did not answer" means in a message. */
  connectTimeout?: number;
}

export interface RunResult
  extends Pick<ProgramExit, "stdout" | "stderr">,
    Partial<Pick<ProgramExit, "signal" | "timedOut">> {
  /** restic's exit code, or 128 + the number of the signal that ended it. */
  code: number;
  /** The deadline the call had, for a message when it passed (`timedOut`). */
  deadlineMs?: number;
  /** How long the call took. */
  elapsedMs?: number;
}

export interface RunOptions extends Pick<ProgramOptions, "deadlineMs" | "deadlineSignal" | "killAfterMs"> {
  /** Each stdout line as it comes (JSON progress). */
  onLine?: (line: string) => void;
  extraEnv?: Record<string, string>;
  cwd?: string;
}

export interface ResticVersion {
  major: number;
  minor: number;
  patch: number;
  text: string;
}

export const SnapshotSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{64}$/),
  short_id: z.string().optional(),
  time: z.string(),
  hostname: z.string(),
  paths: z.array(z.string()),
  tags: z.array(z.string()).nullish(),
  /** Set on copies (ring, cold): the snapshot id in the local repository. */
  original: z.string().optional(),
});
export type Snapshot = z.infer<typeof SnapshotSchema>;

/** Parses `restic version` output such as "restic 0.14.0 compiled with go1.19.8 on linux/amd64". */
export function parseResticVersion(output: string): ResticVersion | undefined {
  const m = /restic (\d+)\.(\d+)\.(\d+)/.exec(output);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: output.trim().split("\n")[0]! };
}

export class Restic {
  private constructor(
    readonly bin: string,
    readonly version: ResticVersion,
    private readonly cacheDir?: string,
    /** Each call's deadline unless the caller gives one (src/backup/deadlines.ts). */
    private readonly deadlineFor?: (repo: Repo, args: string[]) => number,
  ) {}

  /** Runs `restic version`; a missing program is a BackupError with the install command. */
  static detect(
    bin = "restic",
    options: { cacheDir?: string; deadlineFor?: (repo: Repo, args: string[]) => number } = {},
  ): Restic {
    const result = spawnSync(bin, ["version"], { encoding: "utf8", timeout: 10_000 });
    const version = result.status === 0 ? parseResticVersion(result.stdout) : undefined;
    if (!version)
      throw new BackupError(
        "RESTIC_MISSING",
        result.error
          ? `restic not found (${bin}): ${(result.error as NodeJS.ErrnoException).code ?? result.error.message}`
          : `${bin} version did not answer like restic: ${(result.stderr || result.stdout).trim()}`,
        "install restic: `brew install restic` on macOS, `apt-get install restic` on Debian; or set backup.restic in appliance.yaml",
      );
    return new Restic(bin, version, options.cacheDir, options.deadlineFor);
  }

  /** The deadline a call with these arguments gets, for callers that start restic themselves (the dump pipe). */
  deadlineMs(repo: Repo, args: string[]): number | undefined {
    return this.deadlineFor?.(repo, args);
  }

  /** restic >= 0.17 runs the dump itself and refuses to save a snapshot when it fails. */
  get hasStdinFromCommand(): boolean {
    return this.atLeast(0, 17);
  }

  atLeast(major: number, minor: number): boolean {
    return this.version.major > major || (this.version.major === major && this.version.minor >= minor);
  }

  /** Environment for one repository: only our RESTIC_* variables, the password by file. */
  env(repo: Repo, extra: Record<string, string> = {}): Record<string, string> {
    assertPasswordFile(repo);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("RESTIC_")) env[k] = v;
    return {
      ...env,
      RESTIC_REPOSITORY: repo.repository,
      RESTIC_PASSWORD_FILE: repo.passwordFile,
      ...(this.cacheDir ? { RESTIC_CACHE_DIR: this.cacheDir } : {}),
      ...extra,
    };
  }

  args(repo: Repo, args: string[]): string[] {
    return [...(repo.options ?? []).flatMap((o) => ["-o", o]), ...args];
  }

  /** Runs restic to the end, or to its deadline (SIGINT by default: restic stops without saving). */
  async run(repo: Repo, args: string[], options: RunOptions = {}): Promise<RunResult> {
    const { onLine, extraEnv, cwd, ...deadline } = options;
    const deadlineMs = deadline.deadlineMs ?? this.deadlineFor?.(repo, args);
    const started = performance.now();
    try {
      const exit = await runProgram([this.bin, ...this.args(repo, args)], {
        env: this.env(repo, extraEnv),
        ...(cwd ? { cwd } : {}),
        ...(onLine ? { onStdoutLine: onLine } : {}),
        ...deadline,
        ...(deadlineMs === undefined ? {} : { deadlineMs }),
      });
      const { status, signal, timedOut, stdout, stderr } = exit;
      const elapsedMs = performance.now() - started;
      return {
        code: status,
        signal,
        timedOut,
        stdout,
        stderr,
        elapsedMs,
        ...(deadlineMs === undefined ? {} : { deadlineMs }),
      };
    } catch (error) {
      if (!(error instanceof ProgramStartError)) throw error;
      throw new BackupError(
        "RESTIC_SPAWN",
        `could not start restic: ${error.reason}`,
        "is restic installed? See `axe-appliance doctor`",
      );
    }
  }

  /** Runs restic and throws a classified BackupError unless it exits 0. */
  async must(repo: Repo, args: string[], doing: string, options: RunOptions = {}): Promise<RunResult> {
    const result = await this.run(repo, args, options);
    if (result.code !== 0) throw resticFailure(repo, doing, result);
    return result;
  }

  async snapshots(repo: Repo, filter: string[] = []): Promise<Snapshot[]> {
    const result = await this.must(repo, ["snapshots", "--json", ...filter], "listing snapshots");
    return parseJson(result.stdout, z.array(SnapshotSchema).nullable(), "restic snapshots --json").then((s) => s ?? []);
  }

  /** True when the repository answers with this password; false only when there is none yet. */
  async exists(repo: Repo): Promise<boolean> {
    const result = await this.run(repo, ["cat", "config"]);
    if (result.code === 0) return true;
    const failure = resticFailure(repo, "opening the repository", result);
    if (failure.code === "REPO_MISSING") return false;
    throw failure;
  }

  async stats(repo: Repo): Promise<number> {
    const result = await this.must(repo, ["stats", "--json", "--mode", "raw-data"], "reading the repository size");
    const stats = await parseJson(result.stdout, z.object({ total_size: z.number() }), "restic stats --json");
    return stats.total_size;
  }
}

/** Parses restic JSON output against the part of it we depend on. */
export async function parseJson<T>(text: string, schema: z.ZodType<T>, what: string): Promise<T> {
  let value: unknown;
  try {
    value = JSON.parse(text.trim().split("\n").at(-1) ?? "");
  } catch {
    throw new BackupError(
      "RESTIC_OUTPUT",
      `${what}: expected JSON, got: ${text.trim().slice(0, 200)}`,
      "is this restic too old? `restic version`; 0.14 or newer is needed",
    );
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new BackupError(
      "RESTIC_OUTPUT",
      `${what}: unexpected JSON: ${parsed.error.issues[0]?.message}`,
      "report this with `restic version`",
    );
  return parsed.data;
}

/** Refuses a password file that others can read, before restic ever sees it. */
function assertPasswordFile(repo: Repo): void {
  let mode: number;
  try {
    mode = statSync(repo.passwordFile).mode & 0o777;
  } catch {
    throw new BackupError(
      "PASSWORD_MISSING",
      `${repo.tier}: password file ${repo.passwordFile} not found`,
      "run `axe-appliance backup init`, or restore the file from the operator's password manager",
    );
  }
  if (mode & 0o077)
    throw new BackupError(
      "PASSWORD_MODE",
      `${repo.tier}: password file ${repo.passwordFile} has mode ${mode.toString(8)}; expected 600`,
      `chmod 600 ${repo.passwordFile}`,
    );
}

/** What a failed restic run means, from its exit code (>= 0.17) or its message (0.14). */
export function resticFailure(repo: Repo, doing: string, result: RunResult): BackupError {
  // the ring peer's ssh stderr passes through here: nothing in it may steer a terminal
  // biome-ignore lint/suspicious/noControlCharactersInRegex: restic's terminal line erasers (ESC [ 2 K)
  const text = printableLines(readableStderr(result.stderr.replaceAll(/\x1b\[[0-9;]*[A-Za-z]/g, "")));
  const tail = text.trim().split("\n").filter(Boolean).slice(-3).join("; ") || `exit ${result.code}`;
  const where = `${repo.tier} tier (${repo.repository})`;
  if (result.timedOut) {
    const seconds = Math.round((result.deadlineMs ?? 0) / 1000);
    if (repo.tier === "ring")
      return new BackupError(
        "PEER_UNREACHABLE",
        `${where}: ${doing}: the peer did not answer in ${seconds} s; restic was interrupted (${tail})`,
        "is the peer's sshd hung, or the network half dead? Try `ssh` to it by hand; the other tiers still ran. backup.deadlines in appliance.yaml sets the limits",
      );
    return new BackupError(
      "RESTIC_TIMEOUT",
      `${where}: ${doing}: restic did not finish in ${seconds} s and was interrupted (${tail})`,
      "is the disk hung or very slow? The other tiers still ran; backup.deadlines in appliance.yaml sets the limits",
    );
  }
  if (text.includes(KEY_REFUSED))
    return new BackupError(
      "PEER_KEY_REFUSED",
      `${where}: ${doing}: ${text
        .split("\n")
        .find((line) => line.includes(KEY_REFUSED))
        ?.trim()}`,
      "the peer rewrote the repository's key file to make this machine's restic spend memory or time: ask its operator; the other tiers still ran",
    );
  if (result.code === 12 || /wrong password or no key found/i.test(text))
    return new BackupError(
      "WRONG_PASSWORD",
      `${where}: ${doing}: the password in ${repo.passwordFile} does not open this repository`,
      "restore the right password file; nothing was changed in the repository",
    );
  if (result.code === 11 || /already locked/i.test(text))
    return new BackupError(
      "REPO_LOCKED",
      `${where}: ${doing}: the repository is locked by another restic (${tail})`,
      "wait for the other backup to finish; `axe-appliance backup run` removes locks left by dead runners itself",
    );
  if (/no space left on device/i.test(text))
    return new BackupError(
      "DISK_FULL",
      `${where}: ${doing}: no space left on device`,
      "free space on the repository's disk; nothing was deleted",
    );
  // restic may exit before it prints ssh's own "timed out" line; a session that failed only after the
  // connect timeout is the same hung peer.
  const sessionFailed = /unable to start the sftp session|ssh command exited/i.test(text);
  const waitedOut = (result.elapsedMs ?? 0) >= (repo.connectTimeout ?? Number.POSITIVE_INFINITY) * 900;
  if (repo.connectTimeout && (/timed out/i.test(text) || (sessionFailed && waitedOut)))
    return new BackupError(
      "PEER_UNREACHABLE",
      `${where}: ${doing}: the peer did not answer in ${repo.connectTimeout} s (${tail})`,
      "is the peer's sshd hung, or the network half dead? Try `ssh` to it by hand; the other tiers still ran",
    );
  if (
    /ssh command exited|connection refused|connection closed|unable to start the sftp session|could not resolve|timed out/i.test(
      text,
    )
  )
    return new BackupError(
      "PEER_UNREACHABLE",
      `${where}: ${doing}: cannot reach the peer (${tail})`,
      "is the peer up and on Tailscale? Try `ssh` to it by hand; the other tiers still ran",
    );
  if (result.code === 10 || /unable to open config file|Is there a repository at the following location/i.test(text)) {
    // restic names the repository it could not open: for copy and init --from-repo that may be the source.
    const missing = /following location\?\s*\n(.+)/.exec(text)?.[1]?.trim();
    if (missing && missing !== repo.repository)
      return new BackupError(
        "SOURCE_REPO_MISSING",
        `${where}: ${doing}: the source repository ${missing} does not exist (this tier's own repository was not touched)`,
        "run `axe-appliance backup init` to re-create the local repository, then `axe-appliance backup run`",
      );
    return new BackupError(
      "REPO_MISSING",
      `${where}: ${doing}: no repository there`,
      "run `axe-appliance backup init`",
    );
  }
  if (result.code === 130 || result.code === 2 + 128)
    return new BackupError("INTERRUPTED", `${where}: ${doing}: interrupted`, "run it again");
  return new BackupError(
    "RESTIC_FAILED",
    `${where}: ${doing} failed: ${tail}`,
    "run `axe-appliance backup verify` to check the repository",
  );
}

/** restic --json reports errors as JSON lines (>= 0.17); their messages read like the plain output. */
function readableStderr(text: string): string {
  return text
    .split("\n")
    .map((line) => {
      if (!line.startsWith("{")) return line;
      try {
        const value = JSON.parse(line) as { message?: string; error?: { message?: string } };
        return value.error?.message ?? value.message ?? line;
      } catch {
        return line;
      }
    })
    .join("\n");
}
