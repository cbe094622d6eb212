/**
 * `pg_dump -Fc` streamed into `restic backup --stdin`, never through a clear-text file, and a
 * failed dump never becomes a snapshot: restic >= 0.17 runs pg_dump itself
 * (--stdin-from-command) and refuses to save on failure; with older restic we sit between the two
 * and, when pg_dump fails, interrupt restic (SIGINT) before its input is closed.
 * The figures the drill compares against are taken in the same exported snapshot as the dump.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { connect, libpqEnv, type DatabaseTarget } from "../db/connect.ts";
import { DUMP_TOOLS, findPostgresTools } from "../db/postgres-tools.ts";
import { AppError, BackupError } from "../lib/errors.ts";
import { writeSecretFile } from "../lib/secret-file.ts";
import { tableFigures, type TableFigure } from "./figures.ts";
import { collect, resticFailure, type Repo, type Restic, type RunResult } from "./restic.ts";

export const DUMP_FILENAME = "frame.dump";
export const DUMP_TAG = "db";

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
  onLine?: (line: string) => void;
}

/** Dumps the database into the repository as one snapshot tagged `db`; returns its summary and figures. */
export async function dumpDatabase(options: DumpOptions): Promise<DumpResult> {
  const bin = toolDir();
  const auth = libpqAuth(options.target);
  const sql = connect(options.target, { max: 1 });
  try {
    return await sql.begin("isolation level repeatable read read only", async (tx) => {
      const [{ snapshot }] = (await tx`select pg_export_snapshot() as snapshot`) as unknown as [{ snapshot: string }];
      const dumpArgs = ["-Fc", "-Z0", "--no-password", `--snapshot=${snapshot}`];
      const figuresTaken = tableFigures(tx);
      const backup = options.restic.hasStdinFromCommand
        ? backupFromCommand(options, [join(bin, "pg_dump"), ...dumpArgs], auth.env)
        : backupThroughPipe(options, join(bin, "pg_dump"), dumpArgs, auth.env);
      const [result, figures] = await Promise.all([backup, figuresTaken]);
      return { summary: summaryOf(result), figures };
    });
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new BackupError("DUMP_FAILED", `dumping the database failed: ${(error as Error).message}; no snapshot was saved`, "is Postgres running? `axe-appliance doctor`");
  } finally {
    await sql.end({ timeout: 5 });
    auth.cleanup();
  }
}

function toolDir(): string {
  try {
    return findPostgresTools(DUMP_TOOLS);
  } catch (error) {
    throw new BackupError("PG_DUMP_MISSING", (error as AppError).message, (error as AppError).hint);
  }
}

/** libpq environment; a password from config goes to a 0600 pgpass file, never argv. */
export function libpqAuth(target: DatabaseTarget): { env: Record<string, string>; cleanup: () => void } {
  if (target.passfile || target.password === undefined) return { env: libpqEnv(target), cleanup: () => {} };
  const dir = mkdtempSync(join(tmpdir(), "axe-pgpass-"));
  const passfile = join(dir, "pgpass");
  const esc = (s: string) => s.replaceAll("\\", "\\\\").replaceAll(":", "\\:");
  writeSecretFile(passfile, `*:*:*:${esc(target.user)}:${esc(target.password)}\n`);
  return { env: libpqEnv({ ...target, passfile }), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function backupArgs(host: string): string[] {
  return ["backup", "--json", "--host", host, "--tag", DUMP_TAG, "--stdin-filename", DUMP_FILENAME];
}

/** restic >= 0.17: restic runs pg_dump and saves nothing when it exits non-zero. */
async function backupFromCommand(options: DumpOptions, command: string[], env: Record<string, string>): Promise<RunResult> {
  const args = [...backupArgs(options.host), "--stdin-from-command", "--", ...command];
  const result = await options.restic.run(options.repo, args, { onLine: options.onLine, extraEnv: env });
  if (result.code !== 0) {
    if (/pg_dump/.test(result.stderr)) throw dumpFailure(result.code, result.stderr);
    throw resticFailure(options.repo, "saving the database dump", result);
  }
  return result;
}

/** Older restic: pg_dump | us | restic, and restic is interrupted before EOF when pg_dump fails. */
async function backupThroughPipe(options: DumpOptions, pgDump: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  const restic = options.restic.spawn(options.repo, [...backupArgs(options.host), "--stdin"]);
  const dump = spawn(pgDump, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  restic.stdin!.on("error", () => {}); // restic gone early: its own exit code tells why
  dump.stdout!.pipe(restic.stdin!, { end: false });
  let dumpStderr = "";
  dump.stderr!.on("data", (chunk: Buffer) => (dumpStderr += chunk.toString()));
  const resticDone = collect(restic, options.onLine);
  const dumpDone = new Promise<number>((resolve) => {
    dump.on("error", (error) => ((dumpStderr += error.message), resolve(127)));
    dump.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  // If restic dies first, stop pg_dump instead of letting it block on a full pipe.
  let resticEnded = false;
  resticDone.then(() => {
    resticEnded = true;
    if (dump.exitCode === null) dump.kill("SIGTERM");
  });
  const dumpCode = await dumpDone;
  if (resticEnded) {
    const result = await resticDone;
    if (result.code !== 0 || dumpCode !== 0) throw result.code !== 0 ? resticFailure(options.repo, "saving the database dump", result) : dumpFailure(dumpCode, dumpStderr);
  }
  if (dumpCode === 0) {
    restic.stdin!.end();
    const result = await resticDone;
    if (result.code !== 0) throw resticFailure(options.repo, "saving the database dump", result);
    return result;
  }
  restic.kill("SIGINT");
  await Promise.race([resticDone, Bun.sleep(30_000)]);
  if (restic.exitCode === null) restic.kill("SIGKILL");
  await resticDone;
  restic.stdin!.destroy();
  throw dumpFailure(dumpCode, dumpStderr);
}

function dumpFailure(code: number, stderr: string): BackupError {
  const tail = stderr.trim().split("\n").filter(Boolean).slice(-3).join("; ") || `exit ${code}`;
  return new BackupError("DUMP_FAILED", `pg_dump failed (exit ${code}): ${tail}; no snapshot was saved`, "fix the database problem pg_dump names, then run `axe-appliance backup run` again");
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
  throw new BackupError("RESTIC_OUTPUT", "restic backup --json printed no summary with a snapshot id", "report this with `restic version`");
}

export { summaryOf };
