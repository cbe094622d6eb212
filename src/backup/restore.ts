/**
 * Getting data back: `restic dump` of a database snapshot piped into `pg_restore` (no clear-text
 * file), or `restic restore` of any snapshot into a directory.
 */
import { join } from "node:path";
import type { DatabaseTarget } from "../db/connect.ts";
import { DUMP_TOOLS, findPostgresTools } from "../db/postgres-tools.ts";
import { BackupError, UsageError } from "../lib/errors.ts";
import type { BackupContext } from "./context.ts";
import { DUMP_FILENAME, DUMP_TAG, libpqAuth } from "./dump.ts";
import { type Repo, resticFailure, type Snapshot } from "./restic.ts";

/** Resolves `latest` or an id (prefix) to a snapshot of this host; `tag` narrows `latest`. */
export async function findSnapshot(ctx: BackupContext, repo: Repo, id: string, tag?: string): Promise<Snapshot> {
  const snapshots = await ctx
    .restic()
    .snapshots(repo, id === "latest" ? ["--host", ctx.host, ...(tag ? ["--tag", tag] : [])] : []);
  const found =
    id === "latest"
      ? snapshots.sort((a, b) => a.time.localeCompare(b.time)).at(-1)
      : snapshots.find((s) => s.id.startsWith(id) || s.short_id === id);
  if (!found)
    throw new BackupError(
      "SNAPSHOT_NOT_FOUND",
      `${repo.tier}: no snapshot ${id === "latest" ? `of host ${ctx.host}${tag ? ` tagged ${tag}` : ""}` : id} in ${repo.repository}`,
      "list them with `restic snapshots`, or run `axe-appliance backup run` first",
    );
  return found;
}

export function isDumpSnapshot(snapshot: Snapshot): boolean {
  return (snapshot.tags ?? []).includes(DUMP_TAG) && snapshot.paths.some((p) => p.endsWith(DUMP_FILENAME));
}

/**
 * Streams the dump in `snapshot` into `pg_restore` against `target` (which must exist).
 * `--single-transaction --exit-on-error`: the database gets everything or nothing.
 */
export async function restoreDump(
  ctx: BackupContext,
  repo: Repo,
  snapshot: Snapshot,
  target: DatabaseTarget,
  extraArgs: string[] = [],
): Promise<void> {
  if (!isDumpSnapshot(snapshot))
    throw new UsageError(
      "NOT_A_DUMP",
      `snapshot ${snapshot.id.slice(0, 8)} holds files (${snapshot.paths.join(", ")}), not a database dump`,
      "use --to-dir DIR for it, or pick a snapshot tagged db",
    );
  let bin: string;
  try {
    bin = findPostgresTools(DUMP_TOOLS);
  } catch (error) {
    throw new BackupError("PG_RESTORE_MISSING", (error as Error).message, "install the Postgres client tools");
  }
  const auth = libpqAuth(target);
  try {
    const restic = ctx.restic();
    const args = ["--no-password", "--single-transaction", "--exit-on-error", ...extraArgs, "-d", target.database];
    const piped = await pipeDumpIntoRestore(
      [restic.bin, ...restic.args(repo, ["dump", snapshot.id, `/${DUMP_FILENAME}`])],
      restic.env(repo),
      [join(bin, "pg_restore"), ...args],
      { ...processEnv(), ...auth.env },
    );
    if (piped.dump.code !== 0 && !piped.dumpStoppedByUs)
      throw resticFailure(repo, `reading snapshot ${snapshot.id.slice(0, 8)}`, piped.dump);
    if (piped.restore.code !== 0) {
      const tail = piped.restore.stderr.trim().split("\n").slice(-3).join("; ");
      throw new BackupError(
        "RESTORE_FAILED",
        `pg_restore into ${target.database} failed: ${tail}; nothing was restored (one transaction)`,
        "restore into an empty database; on a new machine create the entity roles first or pass --no-owner",
      );
    }
  } finally {
    auth.cleanup();
  }
}

/**
 * restic dump | pg_restore. When pg_restore stops early (an error), restic is stopped too: a
 * producer left blocked on a full pipe would otherwise keep nothing alive and the process would
 * end silently.
 */
async function pipeDumpIntoRestore(
  dumpArgv: string[],
  dumpEnv: Record<string, string>,
  restoreArgv: string[],
  restoreEnv: Record<string, string>,
) {
  const restore = Bun.spawn(restoreArgv, { env: restoreEnv, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const dump = Bun.spawn(dumpArgv, { env: dumpEnv, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const texts = [
    new Response(dump.stderr).text(),
    new Response(restore.stdout).text(),
    new Response(restore.stderr).text(),
  ] as const;
  let dumpStoppedByUs = false;
  void restore.exited.then(() => {
    if (dump.exitCode === null) {
      dumpStoppedByUs = true;
      dump.kill("SIGTERM");
    }
  });
  try {
    for await (const chunk of dump.stdout) {
      if (restore.exitCode !== null) break;
      restore.stdin.write(chunk);
      await restore.stdin.flush();
    }
  } catch {
    // pg_restore went away mid-write; its exit code and stderr say why
  }
  try {
    await restore.stdin.end();
  } catch {
    // already closed
  }
  const [dumpCode, restoreCode] = await Promise.all([dump.exited, restore.exited]);
  const [dumpErr, restoreOut, restoreErr] = await Promise.all(texts);
  return {
    dump: { code: dumpCode, stdout: "", stderr: dumpErr },
    restore: { code: restoreCode, stdout: restoreOut, stderr: restoreErr },
    dumpStoppedByUs,
  };
}

function processEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
}

/** `restic restore` of a snapshot into a directory. */
export async function restoreToDir(ctx: BackupContext, repo: Repo, snapshot: Snapshot, dir: string): Promise<void> {
  await ctx
    .restic()
    .must(repo, ["restore", snapshot.id, "--target", dir], `restoring snapshot ${snapshot.id.slice(0, 8)} into ${dir}`);
}
