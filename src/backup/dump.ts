/**
 * `pg_dump -Fc` streamed into `restic backup --stdin`, never through a clear-text file, and a
 * failed dump never becomes a snapshot: restic >= 0.17 runs pg_dump itself
 * (--stdin-from-command) and refuses to save on failure; with older restic we hold the pipe's
 * write end and, when pg_dump fails, interrupt restic (SIGINT) before its input is closed.
 * The figures the drill compares against are taken in the same exported snapshot as the dump.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { connect, type DatabaseTarget, libpqEnv } from "../db/connect.ts";
import { DUMP_TOOLS, findPostgresTools } from "../db/postgres-tools.ts";
import { AppError, BackupError } from "../lib/errors.ts";
import { lastLines } from "../lib/program.ts";
import { writeSecretFile } from "../lib/secret-file.ts";
import { type TableFigure, tableFigures } from "./figures.ts";
import { type DumpExit, pipeIntoRestic } from "./pipe.ts";
import { type Repo, type Restic, type RunResult, resticFailure } from "./restic.ts";
import { removeStaleLocks } from "./retention.ts";
import { DUMP_TAG, RUN_TAG_PREFIX } from "./tags.ts";

export const DUMP_FILENAME = "frame.dump";

const SummarySchema = z.object({
  message_type: z.literal("summary"),
  snapshot_id: z.string().regex(/^[0-9a-f]{8,64}$/),
  data_added: z.number(),
  total_bytes_processed: z.number(),
});
export type BackupSummary = z.infer<typeof SummarySchema>;

export interface DumpResult {
  summary: BackupSummary;
  figures: TableFigure[];
}

export interface DumpOptions {
  restic: Restic;
  repo: Repo;
  target: DatabaseTarget;
  host: string;
  /** Each line of restic's --json output: its status lines carry the bytes read so far. */
  onLine?: (line: string) => void;
  /** Tags the snapshot `run:<id>`; the figures are kept under the same id. */
  runId: string;
}

/** What is streamed: the dump by default; a base backup says so (tag, file name, program, messages). */
export interface StreamKind {
  tag: string;
  filename: string;
  program: string;
  /** "snapshot", "base backup snapshot": in "no ... was saved". */
  what: string;
}

const DUMP_STREAM: StreamKind = { tag: DUMP_TAG, filename: DUMP_FILENAME, program: "pg_dump", what: "snapshot" };

/** Streams `argv`'s standard output into the repository as one snapshot, or saves nothing when it fails. */
export function streamIntoRestic(
  options: DumpOptions,
  argv: string[],
  env: Record<string, string>,
  kind: StreamKind = DUMP_STREAM,
): Promise<RunResult> {
  return options.restic.hasStdinFromCommand
    ? backupFromCommand(options, argv, env, kind)
    : backupThroughPipe(options, argv[0]!, argv.slice(1), env, kind);
}

/** Dumps the database into the repository as one snapshot tagged `db`; returns its summary and figures. */
export async function dumpDatabase(options: DumpOptions): Promise<DumpResult> {
  const bin = toolDir();
  let auth: Awaited<ReturnType<typeof libpqAuth>> | undefined;
  const sql = connect(options.target, { max: 1 });
  try {
    auth = await libpqAuth(options.target);
    const { env } = auth;
    return await sql.begin("isolation level repeatable read read only", async (tx) => {
      const [{ snapshot }] = (await tx`select pg_export_snapshot() as snapshot`) as unknown as [{ snapshot: string }];
      const dumpArgs = ["-Fc", "-Z0", "--no-password", `--snapshot=${snapshot}`];
      const figuresTaken = tableFigures(tx);
      const backup = streamIntoRestic(options, [join(bin, "pg_dump"), ...dumpArgs], env);
      const [result, figures] = await Promise.all([backup, figuresTaken]);
      return { summary: summaryOf(result), figures };
    });
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new BackupError(
      "DUMP_FAILED",
      `dumping the database failed: ${(error as Error).message}; no snapshot was saved`,
      "is Postgres running? `axe-appliance doctor`",
    );
  } finally {
    await sql.end({ timeout: 5 });
    await auth?.cleanup();
  }
}

export function toolDir(): string {
  try {
    return findPostgresTools(DUMP_TOOLS);
  } catch (error) {
    throw new BackupError("PG_DUMP_MISSING", (error as AppError).message, (error as AppError).hint);
  }
}

/**
 * libpq environment; a password from config goes to a 0600 pgpass file, never argv. libpq before 16
 * sends a password in clear to any server that asks, so with a password the server first proves
 * itself through SCRAM (src/db/scram-only.ts) on a connection held until `cleanup`: while it holds,
 * Postgres holds its port, and no other local account can answer the tool there.
 */
export async function libpqAuth(
  target: DatabaseTarget,
): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> {
  if (target.password === undefined) return { env: libpqEnv(target), cleanup: async () => {} };
  const held = connect(target, { max: 1 });
  try {
    await held`select 1`;
  } catch (error) {
    await held.end({ timeout: 1 }).catch(() => {});
    throw error;
  }
  const release = () => held.end({ timeout: 5 }).catch(() => {});
  if (target.passfile) return { env: libpqEnv(target), cleanup: release };
  const dir = mkdtempSync(join(tmpdir(), "axe-pgpass-"));
  const passfile = join(dir, "pgpass");
  const esc = (s: string) => s.replaceAll("\\", "\\\\").replaceAll(":", "\\:");
  writeSecretFile(passfile, `*:*:*:${esc(target.user)}:${esc(target.password)}\n`);
  return {
    env: libpqEnv({ ...target, passfile }),
    cleanup: async () => {
      rmSync(dir, { recursive: true, force: true });
      await release();
    },
  };
}

function backupArgs(options: DumpOptions, kind: StreamKind): string[] {
  return [
    "backup",
    "--json",
    "--host",
    options.host,
    "--tag",
    `${kind.tag},${RUN_TAG_PREFIX}${options.runId}`,
    "--stdin-filename",
    kind.filename,
  ];
}

/** restic >= 0.17: restic runs pg_dump and saves nothing when it exits non-zero. */
async function backupFromCommand(
  options: DumpOptions,
  command: string[],
  env: Record<string, string>,
  kind: StreamKind,
): Promise<RunResult> {
  const args = [...backupArgs(options, kind), "--stdin-from-command", "--", ...command];
  const result = await options.restic.run(options.repo, args, { onLine: options.onLine, extraEnv: env });
  if (result.code === 0) return result;
  const dump = commandFailure(result.stderr);
  if (dump) {
    await removeStaleLocks(options.restic, options.repo).catch(() => {});
    throw dumpFailure(dump, kind);
  }
  if (result.timedOut)
    throw dumpFailure(
      {
        code: result.code,
        signal: null,
        timedOut: true,
        deadlineMs: result.deadlineMs,
        stderr: commandLines(result.stderr).join("\n"),
      },
      kind,
    );
  throw resticFailure(options.repo, `saving the ${kind.program} output`, result);
}

/** Go's names for the signals a child died of ("signal: killed"), as ours. */
const GO_SIGNALS: Record<string, NodeJS.Signals> = {
  killed: "SIGKILL",
  terminated: "SIGTERM",
  interrupt: "SIGINT",
  hangup: "SIGHUP",
  "segmentation fault": "SIGSEGV",
  aborted: "SIGABRT",
  "broken pipe": "SIGPIPE",
};

/**
 * How the command restic ran (pg_dump) ended, from restic's report ("command failed: exit status 1",
 * "command failed: signal: killed"), with the command's own stderr lines; undefined when restic
 * failed on its own.
 */
export function commandFailure(stderr: string): DumpExit | undefined {
  const m = /command failed: (?:exit status (\d+)|signal: ([a-z ]+))/.exec(stderr);
  if (!m) return undefined;
  const signal = m[2] ? (GO_SIGNALS[m[2].trim()] ?? (`SIG${m[2].trim().toUpperCase()}` as NodeJS.Signals)) : null;
  return { code: m[1] ? Number(m[1]) : 128, signal, timedOut: false, stderr: commandLines(stderr).join("\n") };
}

/** The lines restic passed through from the command ("subprocess /path/pg_dump: ..."), without the prefix. */
function commandLines(stderr: string): string[] {
  return stderr
    .split("\n")
    .map((line) => /^subprocess [^:]+: (.*)$/.exec(line)?.[1])
    .filter((line): line is string => Boolean(line?.trim()));
}

/** Older restic: pg_dump | restic with us holding the pipe's end, and restic interrupted before EOF when pg_dump fails (see pipe.ts). */
async function backupThroughPipe(
  options: DumpOptions,
  pgDump: string,
  args: string[],
  env: Record<string, string>,
  kind: StreamKind,
): Promise<RunResult> {
  const { restic, repo } = options;
  const resticArgv = [restic.bin, ...restic.args(repo, [...backupArgs(options, kind), "--stdin"])];
  const piped = await pipeIntoRestic([pgDump, ...args], { ...processEnv(), ...env }, resticArgv, restic.env(repo), {
    onLine: options.onLine,
    deadlineMs: restic.deadlineMs(repo, ["backup"]),
  });
  // restic failed on its own (wrong password, lock, disk) when it was not we who interrupted it; pg_dump
  // then dies of SIGPIPE, which is restic's failure, not the dump's.
  const interrupted = piped.restic.signal !== null && piped.restic.signal !== undefined;
  const resticFailed = piped.restic.code !== 0 && !interrupted && piped.restic.code !== 130;
  if (piped.resticEndedFirst || resticFailed || piped.dump.signal === "SIGPIPE")
    throw resticFailure(repo, `saving the ${kind.program} output`, piped.restic);
  if (piped.dump.code !== 0) {
    // A restic interrupted while it was still starting can leave its lock behind; it is dead, so the lock is stale.
    await removeStaleLocks(restic, repo).catch(() => {});
    throw dumpFailure(piped.dump, kind);
  }
  return piped.restic;
}

function processEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
}

/** Which way pg_dump failed (exit code, signal, deadline) with its last words; never blamed on restic. */
function dumpFailure(
  exit: Pick<DumpExit, "code" | "signal" | "timedOut" | "deadlineMs" | "stderr">,
  kind: StreamKind,
): BackupError {
  const program = kind.program;
  const how = exit.timedOut
    ? `${program} did not finish in ${Math.round((exit.deadlineMs ?? 0) / 1000)} s and was stopped`
    : exit.signal
      ? `${program} was killed by ${exit.signal}`
      : `${program} failed (exit ${exit.code})`;
  const tail = lastLines(exit.stderr);
  return new BackupError(
    "DUMP_FAILED",
    `${how}${tail ? `: ${tail}` : ""}; no ${kind.what} was saved`,
    exit.timedOut
      ? "is the database very slow or locked? backup.deadlines.backup in appliance.yaml sets the limit; the last good dump is untouched"
      : exit.signal
        ? "something outside stopped pg_dump (out of memory? a shutdown?); look at the system log, then run `axe-appliance backup run` again"
        : `fix the database problem ${program} names, then run \`axe-appliance backup run\` again`,
  );
}

function summaryOf(result: RunResult): BackupSummary {
  for (const line of result.stdout.trim().split("\n").reverse()) {
    try {
      const parsed = SummarySchema.safeParse(JSON.parse(line));
      if (parsed.success) return parsed.data;
    } catch {
      // progress lines are not all JSON on every version; keep looking
    }
  }
  throw new BackupError(
    "RESTIC_OUTPUT",
    "restic backup --json printed no summary with a snapshot id",
    "report this with `restic version`",
  );
}

export { summaryOf };
