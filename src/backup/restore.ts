/**
 * Getting data back: `restic dump` of a database snapshot piped into `pg_restore` (no clear-text
 * file), or `restic restore` of any snapshot into a directory.
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { DatabaseTarget } from "../db/connect.ts";
import { DUMP_TOOLS, findPostgresTools } from "../db/postgres-tools.ts";
import { BackupError, UsageError } from "../lib/errors.ts";
import { lastLines, runPipeline } from "../lib/program.ts";
import type { BackupContext } from "./context.ts";
import { DUMP_FILENAME, libpqAuth } from "./dump.ts";
import { type Repo, resticFailure, type Snapshot } from "./restic.ts";
import { assertNotOlderThanSeen } from "./status.ts";
import { DUMP_TAG } from "./tags.ts";
import { assertOwnDirectory, makeOwnDirectory } from "./target-dir.ts";

/**
 * Resolves `latest` or an id (prefix) to a snapshot of this host; `tag` narrows `latest`, which on
 * a copy tier must be no older than what this machine saw there (`assertNotOlderThanSeen`).
 */
export async function findSnapshot(ctx: BackupContext, repo: Repo, id: string, tag?: string): Promise<Snapshot> {
  const snapshots = await ctx.restic().snapshots(repo, id === "latest" ? ["--host", ctx.host] : []);
  if (id === "latest") assertNotOlderThanSeen(ctx.stateDir, ctx.host, repo, snapshots);
  const found =
    id === "latest"
      ? snapshots
          .filter((s) => !tag || (s.tags ?? []).includes(tag))
          .sort((a, b) => a.time.localeCompare(b.time))
          .at(-1)
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
  const auth = await libpqAuth(target);
  try {
    const restic = ctx.restic();
    const args = ["--no-password", "--single-transaction", "--exit-on-error", ...extraArgs, "-d", target.database];
    const dumpArgs = ["dump", snapshot.id, `/${DUMP_FILENAME}`];
    // pg_restore can take no longer than the read it restores; SIGTERM ends its one transaction, so nothing is half-restored.
    const deadlineMs = restic.deadlineMs(repo, dumpArgs);
    const piped = await runPipeline(
      { argv: [restic.bin, ...restic.args(repo, dumpArgs)], options: { env: restic.env(repo), deadlineMs } },
      {
        argv: [join(bin, "pg_restore"), ...args],
        options: { env: { ...processEnv(), ...auth.env }, deadlineMs, deadlineSignal: "SIGTERM" },
      },
    );
    const dump = piped.producer;
    if (dump.status !== 0 && !piped.producerStopped)
      throw resticFailure(repo, `reading snapshot ${snapshot.id.slice(0, 8)}`, {
        ...dump,
        code: dump.status,
        deadlineMs,
      });
    const restore = piped.consumer;
    if (restore.status !== 0) {
      const how = restore.timedOut
        ? `did not finish in ${Math.round((deadlineMs ?? 0) / 1000)} s and was stopped`
        : "failed";
      throw new BackupError(
        "RESTORE_FAILED",
        `pg_restore into ${target.database} ${how}: ${lastLines(restore.stderr)}; nothing was restored (one transaction)`,
        "restore into an empty database; on a new machine create the entity roles first or pass --no-owner",
      );
    }
  } finally {
    await auth.cleanup();
  }
}

function processEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
}

/**
 * `restic restore` of a snapshot into a directory: a new one (made 0700) or an empty-or-not one of
 * ours alone, never a link or another account's (restic follows and fills either, the dump 0644).
 */
export async function restoreToDir(ctx: BackupContext, repo: Repo, snapshot: Snapshot, dir: string): Promise<void> {
  const own = { mode: 0o700, owners: [process.getuid?.() ?? 0], private: true, code: "RESTORE_TARGET_UNSAFE" };
  assertOwnDirectory(dir, own);
  mkdirSync(dirname(dir), { recursive: true, mode: 0o755 });
  makeOwnDirectory(dir, own);
  await ctx
    .restic()
    .must(repo, ["restore", snapshot.id, "--target", dir], `restoring snapshot ${snapshot.id.slice(0, 8)} into ${dir}`);
}
