/**
 * `backup wal-ship` (every few minutes, from its timer): the segments that `wal-push` spooled go to
 * the local repository as one snapshot tagged `wal`, then to the ring and the cold SSD with
 * `restic copy --tag wal`. A segment leaves the spool only once every enabled tier has it, so a
 * ring peer that is down or a cold SSD that is away keeps it here until they are back, or until
 * local retention has forgotten it (no kept base backup needs it: then no tier ever will). Its own
 * lock (not the runner's): shipping goes on while the daily run takes its hour.
 *
 * The spool belongs to the account Postgres runs as, so restic never reads it: each new segment is
 * read through a checked descriptor (spool.ts) into a stage directory of ours, and that is saved.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { Config } from "../config/load.ts";
import { walSpool } from "../db/archiving.ts";
import { fsyncDirectory, writeFileAtomic } from "../lib/atomic-write.ts";
import { AppError, BackupError } from "../lib/errors.ts";
import { tryAcquireLock } from "../lib/lock-file.ts";
import { type BackupContext, backupContext, tierRepo } from "./context.ts";
import type { TierName } from "./restic.ts";
import { retryAfterStaleLocks } from "./retention.ts";
import { exitCodeFor, type RunReport } from "./run.ts";
import { listSpool, readSpoolFile, type SpoolEntry } from "./spool.ts";
import { BASE_TAG, WAL_TAG } from "./tags.ts";
import { ensureCopyRepo, fromEnv } from "./tiers/copy.ts";
import type { TierResult } from "./tiers/types.ts";
import { baseEndTag, SEGMENT_NAME, WAL_FIRST, WAL_LAST } from "./wal-catalogue.ts";

const ShipStateSchema = z.object({
  /** Per tier, the spooled segments it holds (names leave once the spool no longer has them). */
  shipped: z.record(z.string(), z.array(z.string())).default({}),
  /**
   * Per tier, the last successful ship: its time, the newest segment it then held and when that was
   * pushed (ms; `backup status` shows the age of the newest WAL a tier holds).
   */
  last: z
    .record(z.string(), z.object({ time: z.string(), newest: z.string().optional(), pushed: z.number().optional() }))
    .default({}),
});
export type ShipState = z.infer<typeof ShipStateSchema>;

const statePath = (stateDir: string) => join(stateDir, "wal-ship.json");

export function readShipState(stateDir: string): ShipState {
  try {
    const parsed = ShipStateSchema.safeParse(JSON.parse(readFileSync(statePath(stateDir), "utf8")));
    if (parsed.success) return parsed.data;
  } catch {
    // none yet
  }
  return { shipped: {}, last: {} };
}

const plural = (n: number) => `${n} WAL segment${n === 1 ? "" : "s"}`;

export async function shipWal(config: Config): Promise<RunReport> {
  const ctx = backupContext(config);
  const attempt = tryAcquireLock(join(config.paths.run, "wal-ship.lock"), { who: "wal shipper" });
  if (!attempt.acquired)
    throw new BackupError(
      "WAL_SHIP_RUNNING",
      `another wal-ship (PID ${attempt.holder.pid}) is running`,
      "the next interval ships what it leaves",
    );
  try {
    const spool = walSpool(config);
    const entries = listSpool(spool);
    const segments = entries.map((e) => e.name);
    const state = readShipState(ctx.stateDir);
    const results: TierResult[] = [await shipLocal(ctx, spool, entries, state)];
    for (const tier of ["ring", "cold"] as const) results.push(await shipCopy(ctx, tier, state));
    const enabled: TierName[] = [
      "local",
      ...(ctx.ring ? (["ring"] as const) : []),
      ...(ctx.settings.cold.enabled ? (["cold"] as const) : []),
    ];
    const everywhere = segments.filter((s) => enabled.every((t) => state.shipped[t]?.includes(s)));
    const waiting = entries.filter((e) => !everywhere.includes(e.name) && state.shipped.local?.includes(e.name));
    const done = [...everywhere, ...(await pastLocalRetention(ctx, waiting))];
    for (const name of done) rmSync(join(spool, name), { force: true });
    if (done.length) fsyncDirectory(spool);
    const left = new Set(listSpool(spool).map((e) => e.name));
    for (const tier of Object.keys(state.shipped))
      state.shipped[tier] = state.shipped[tier]!.filter((s) => left.has(s));
    writeFileAtomic(statePath(ctx.stateDir), `${JSON.stringify(state)}\n`, { mode: 0o600 });
    return { results, exitCode: exitCodeFor(results), warnings: [] };
  } finally {
    attempt.lock.release();
  }
}

/**
 * Segments the local repository holds that no base backup it keeps needs (pushed before its oldest
 * one started): retention forgets them there, and ring and cold get WAL only from there, so a tier
 * still lacking them (a cold SSD away for weeks) never will. They leave the spool instead of filling it.
 */
async function pastLocalRetention(ctx: BackupContext, waiting: SpoolEntry[]): Promise<string[]> {
  if (!waiting.length) return [];
  const bases = await ctx
    .restic()
    .snapshots(ctx.local, ["--host", ctx.host, "--tag", BASE_TAG])
    .catch(() => []); // unknown: keep them, the next ship asks again
  if (!bases.length) return []; // no base backup yet: every segment may be needed
  const oldest = Math.min(...bases.map((b) => Date.parse(b.time)));
  return waiting.filter((e) => e.mtimeMs < oldest).map((e) => e.name);
}

/** Where the new segments are copied for restic, which never reads the spool itself; ours alone. */
export function walStage(config: Config): string {
  return join(config.paths.data, "backup", "wal-stage");
}

/** The new segments as one local snapshot tagged `wal`, saved from our stage copies. */
async function shipLocal(
  ctx: BackupContext,
  spool: string,
  entries: SpoolEntry[],
  state: ShipState,
): Promise<TierResult> {
  const have = new Set(state.shipped.local ?? []);
  const fresh = entries.filter((e) => !have.has(e.name));
  if (!fresh.length) return { tier: "local", outcome: "ok", message: "local: no new WAL segments" };
  const stage = walStage(ctx.config);
  const refused: string[] = [];
  try {
    rmSync(stage, { recursive: true, force: true });
    mkdirSync(stage, { recursive: true, mode: 0o700 });
    const staged: string[] = [];
    const tags = [WAL_TAG];
    for (const { name, mtimeMs } of fresh) {
      try {
        const bytes = readSpoolFile(spool, name);
        writeFileSync(join(stage, name), bytes, { mode: 0o600, flag: "wx" });
        staged.push(name);
        const label = name.endsWith(".backup") ? baseEndTag(bytes.toString("utf8"), mtimeMs) : undefined;
        if (label) tags.push(label);
      } catch (error) {
        if (!(error instanceof BackupError && error.code === "WAL_SPOOL_UNSAFE")) throw error;
        refused.push(error.message);
      }
    }
    if (staged.length) {
      const restic = ctx.restic();
      const range = staged.filter((n) => SEGMENT_NAME.test(n));
      if (range.length) tags.push(`${WAL_FIRST}${range[0]}`, `${WAL_LAST}${range.at(-1)}`);
      const args = ["backup", "--json", "--host", ctx.host, "--tag", tags.join(","), stage];
      await retryAfterStaleLocks(restic, ctx.local, () => restic.must(ctx.local, args, "saving WAL segments"));
      state.shipped.local = [...have, ...staged];
      const pushed = Math.max(
        state.last.local?.pushed ?? 0,
        ...fresh.filter((e) => staged.includes(e.name)).map((e) => e.mtimeMs),
      );
      state.last.local = { time: new Date().toISOString(), newest: staged.at(-1), pushed };
    }
    if (refused.length)
      return {
        tier: "local",
        outcome: "failed",
        code: "WAL_SPOOL_UNSAFE",
        message: `local: ${staged.length ? `shipped ${plural(staged.length)}, but ` : ""}${refused.join("; ")}`,
      };
    return {
      tier: "local",
      outcome: "ok",
      message: `local: shipped ${plural(staged.length)} (newest ${staged.at(-1)})`,
    };
  } catch (error) {
    return failed("local", error);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** Whatever WAL local holds, copied to a ring or cold repository that can be reached now. */
async function shipCopy(ctx: BackupContext, tier: "ring" | "cold", state: ShipState): Promise<TierResult> {
  const { repo, why } = tierRepo(ctx, tier);
  if (!repo) return { tier, outcome: "skipped", message: `${tier}: skipped, ${why}; its WAL waits in the spool` };
  const pending = (state.shipped.local ?? []).filter((s) => !(state.shipped[tier] ?? []).includes(s));
  if (!pending.length) return { tier, outcome: "ok", message: `${tier}: no new WAL segments` };
  try {
    const restic = ctx.restic();
    await ensureCopyRepo(ctx, repo);
    await retryAfterStaleLocks(restic, repo, () =>
      restic.must(repo, ["copy", "--host", ctx.host, "--tag", WAL_TAG], "copying WAL from the local repository", {
        extraEnv: fromEnv(ctx.local),
      }),
    );
    state.shipped[tier] = [...(state.shipped.local ?? [])];
    state.last[tier] = {
      time: new Date().toISOString(),
      newest: state.shipped[tier]!.at(-1),
      ...(state.last.local?.pushed ? { pushed: state.last.local.pushed } : {}),
    };
    return { tier, outcome: "ok", message: `${tier}: copied ${plural(pending.length)} of WAL from local` };
  } catch (error) {
    return failed(tier, error);
  }
}

function failed(tier: TierName, error: unknown): TierResult {
  if (!(error instanceof AppError)) throw error;
  return {
    tier,
    outcome: "failed",
    code: error.code,
    message: `${tier}: ${error.message}${error.hint ? `\n  hint: ${error.hint}` : ""}; the segments stay in the spool`,
  };
}
