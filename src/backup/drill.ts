/**
 * Restore drills and `backup verify`: per reachable tier, `restic check --read-data-subset`,
 * then the latest dump restored into a scratch database, its row counts and checksums compared
 * with the figures taken at dump time, the scratch database dropped, and "last proven restore"
 * recorded for that tier; with WAL archiving also a point-in-time restore to a moment the drill
 * makes (pitr-drill.ts), recorded as "last proven PITR".
 */
import { randomBytes } from "node:crypto";
import type { Config } from "../config/load.ts";
import { connect, type DatabaseTarget, openDatabase } from "../db/connect.ts";
import { AppError, BackupError } from "../lib/errors.ts";
import { lastLines } from "../lib/program.ts";
import { type BackupContext, backupContext, tierRepo } from "./context.ts";
import { compareFigures, figuresFor, tableFigures } from "./figures.ts";
import { drillFiles } from "./files-drill.ts";
import { takeRunnerLock } from "./lock.ts";
import { archiveAndShip, type DrillMoment, makeMoment, provePointInTime } from "./pitr-drill.ts";
import { damagedPacks } from "./repair.ts";
import { type Repo, resticFailure, TIERS, type TierName } from "./restic.ts";
import { findSnapshot, restoreDump } from "./restore.ts";
import { removeStaleLocks } from "./retention.ts";
import { exitCodeFor, type RunReport } from "./run.ts";
import { clearDamaged, markDamaged, readStatus, updateTier } from "./status.ts";
import { DUMP_TAG, RUN_TAG_PREFIX } from "./tags.ts";
import type { TierResult } from "./tiers/types.ts";

/** Restores the latest dump of `repo` into a scratch database beside `target` and proves it. */
export async function drill(
  ctx: BackupContext,
  repo: Repo,
  target: DatabaseTarget,
): Promise<{ snapshot: string; tables: number }> {
  const snapshot = await findSnapshot(ctx, repo, "latest", DUMP_TAG);
  const runId = (snapshot.tags ?? []).find((t) => t.startsWith(RUN_TAG_PREFIX))?.slice(RUN_TAG_PREFIX.length);
  const localId = snapshot.original ?? snapshot.id;
  const expected = runId ? figuresFor(ctx.stateDir, runId) : undefined;
  if (!expected)
    throw new BackupError(
      "DRILL_NO_FIGURES",
      `${repo.tier}: no figures recorded for dump ${localId.slice(0, 8)}, so a restore cannot be proven`,
      "restore the state directory (`backup restore --to-dir`) or run `axe-appliance backup run` for a new dump",
    );
  const scratch = `axe_drill_${randomBytes(5).toString("hex")}`;
  const admin = connect(target, { max: 1 });
  try {
    await admin`create database ${admin(scratch)}`;
    await restoreDump(ctx, repo, snapshot, { ...target, database: scratch }, ["--no-owner", "--no-acl"]);
    const sql = connect({ ...target, database: scratch }, { max: 1 });
    const actual = await tableFigures(sql, new Map(expected.map((f) => [f.table, f.method]))).finally(() =>
      sql.end({ timeout: 5 }),
    );
    const problems = compareFigures(expected, actual);
    if (problems.length)
      throw new BackupError(
        "DRILL_MISMATCH",
        `${repo.tier}: restored dump ${snapshot.id.slice(0, 8)} differs from what was dumped: ${problems.slice(0, 5).join("; ")}`,
        "keep this repository; run `axe-appliance backup verify` on the other tiers and report it",
      );
    return { snapshot: snapshot.id.slice(0, 8), tables: actual.length };
  } finally {
    await admin`drop database if exists ${admin(scratch)} with (force)`.catch(() => {});
    await admin.end({ timeout: 5 });
  }
}

/** `backup verify`: check and drill every reachable tier; exit 0, 8 (some failed) or 7. */
export async function verifyBackups(config: Config): Promise<RunReport> {
  const ctx = backupContext(config);
  const { lock, warnings } = takeRunnerLock(ctx);
  const results: TierResult[] = [];
  let db: Awaited<ReturnType<typeof openDatabase>> | undefined;
  try {
    db = await openDatabase(config);
    const target = db.target;
    // With WAL archiving: one moment for every tier, made (and shipped) when the first tier gets to it.
    let moment: Promise<DrillMoment> | undefined;
    const pitrMoment = ctx.settings.wal.enabled
      ? () =>
          (moment ??= makeMoment(target).then(async (m) => {
            await archiveAndShip(config, target);
            return m;
          }))
      : undefined;
    for (const tier of TIERS) {
      const { repo, why } = tierRepo(ctx, tier);
      if (!repo) results.push({ tier, outcome: "skipped", message: `${tier}: skipped, ${why}` });
      else results.push(await verifyTier(ctx, repo, target, pitrMoment));
    }
  } finally {
    lock.release();
    await db?.embedded?.stop();
  }
  return { results, exitCode: exitCodeFor(results), warnings };
}

async function verifyTier(
  ctx: BackupContext,
  repo: Repo,
  target: DatabaseTarget,
  pitrMoment?: () => Promise<DrillMoment>,
): Promise<TierResult> {
  const now = () => new Date().toISOString();
  try {
    const restic = ctx.restic();
    await removeStaleLocks(restic, repo);
    // On a tier marked damaged only a full read can prove the damage gone.
    const damaged = readStatus(ctx.stateDir).tiers[repo.tier]?.damaged;
    const readData = damaged ? "--read-data" : `--read-data-subset=${ctx.settings.check_subset}`;
    const check = await restic.run(repo, ["check", readData]);
    const checkError = check.code === 0 ? undefined : lastLines(check.stderr);
    updateTier(ctx.stateDir, repo.tier, (t) => ({
      ...t,
      lastCheck: { time: now(), ok: !checkError, ...(checkError ? { error: checkError } : {}) },
    }));
    if (checkError) {
      if (/wrong password|already locked|unable to open config|ssh/i.test(check.stderr))
        throw resticFailure(repo, "checking the repository", check);
      markDamaged(ctx.stateDir, repo.tier, `restic check found damage: ${checkError}`, damagedPacks(check.stderr));
      throw new BackupError(
        "CHECK_FAILED",
        `${repo.tier}: restic check found damage: ${checkError}`,
        `retention is paused on this tier; run \`axe-appliance backup repair --tier ${repo.tier}\` (docs/operations.md, "A damaged repository")`,
      );
    }
    const checked = `check passed (${damaged ? "all" : ctx.settings.check_subset} of the data read)`;
    const proven = await drill(ctx, repo, target).catch((error: unknown) => {
      throw afterWhatPassed(error, repo.tier, `${checked}, but`);
    });
    const files = await drillFiles(ctx, repo).catch((error: unknown) => {
      throw afterWhatPassed(error, repo.tier, `${checked}, dump ${proven.snapshot} proven, but`);
    });
    const pitr = pitrMoment
      ? await pitrMoment()
          .then((moment) => provePointInTime(ctx.config, repo.tier, moment))
          .catch((error: unknown) => {
            throw afterWhatPassed(error, repo.tier, `${checked}, dump ${proven.snapshot} and files proven, but`);
          })
      : undefined;
    if (damaged) clearDamaged(ctx.stateDir, repo.tier);
    updateTier(ctx.stateDir, repo.tier, (t) => ({
      ...t,
      lastDrill: { time: now(), ok: true, snapshot: proven.snapshot },
      lastProvenRestore: { time: now(), snapshot: proven.snapshot },
      ...(pitr ? { lastProvenPitr: { time: now(), point: pitr.point, tables: pitr.tables } } : {}),
    }));
    const pitrLine = pitr
      ? `; point-in-time restore to ${pitr.point} (base backup ${pitr.base} + ${pitr.walSnapshots} WAL snapshot${pitr.walSnapshots === 1 ? "" : "s"}) proven: row counts and checksums equal the live ones there in ${pitr.tables} table${pitr.tables === 1 ? "" : "s"}`
      : "";
    return {
      tier: repo.tier,
      outcome: "ok",
      snapshot: proven.snapshot,
      message: `${repo.tier}: ${checked}${damaged ? "; the damage mark is cleared" : ""}; dump ${proven.snapshot} restored and proven: row counts and checksums match in ${proven.tables} table${proven.tables === 1 ? "" : "s"}; files snapshot ${files.snapshot} restored and proven: ${files.files} files match their sha256${pitrLine}`,
    };
  } catch (error) {
    const e = error as AppError;
    const message = e instanceof AppError ? e.message : String(error);
    if (!(e instanceof BackupError && e.code === "CHECK_FAILED"))
      updateTier(ctx.stateDir, repo.tier, (t) => ({
        ...t,
        lastDrill: { time: now(), ok: false, error: message, code: e.code },
      }));
    return {
      tier: repo.tier,
      outcome: "failed",
      code: e.code,
      message: `${message}${e.hint ? `\n  hint: ${e.hint}` : ""}`,
    };
  }
}

/** The same error, its message led by what did pass, so the operator reads the whole story. */
function afterWhatPassed(error: unknown, tier: TierName, passed: string): unknown {
  if (!(error instanceof AppError)) return error;
  const own = error.message.startsWith(`${tier}: `) ? error.message.slice(tier.length + 2) : error.message;
  return new BackupError(error.code, `${tier}: ${passed} ${own}`, error.hint);
}
