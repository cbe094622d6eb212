/**
 * The point-in-time drill of `backup verify`. It makes its own moment, so the comparison can be
 * exact: in one repeatable-read transaction on the live database it takes a snapshot, has a second
 * session write a restore point (pg_create_restore_point) and then take a transaction id of its own,
 * and keeps the moment only if none of the transactions the snapshot did not see, among those that
 * had an id by then, committed around the point (else it tries again: such a commit may be in the
 * restore and not in the figures). The figures (row count and checksum per table) are taken in the
 * snapshot, i.e. exactly at the restore point. Then the segment is closed and archived, shipped to
 * every tier, and each tier replays a scratch cluster to that restore point, whose figures must
 * equal the live ones.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Config } from "../config/load.ts";
import { connect, type DatabaseTarget, type Sql } from "../db/connect.ts";
import { BackupError } from "../lib/errors.ts";
import { pollUntil } from "../lib/poll.ts";
import { compareFigures, type TableFigure, tableFigures } from "./figures.ts";
import { restoreToPoint } from "./pitr.ts";
import { target as clusterTarget, destroyCluster } from "./pitr-cluster.ts";
import type { TierName } from "./restic.ts";
import { formatLsn, parseLsn } from "./wal-catalogue.ts";
import { shipWal } from "./wal-ship.ts";

export interface DrillMoment {
  name: string;
  lsn: bigint;
  figures: TableFigure[];
}

/** How many moments to try before calling the database too busy to prove one. */
const TRIES = 30;

/** A restore point at which no transaction committed between the snapshot and the point, with the figures there. */
export async function makeMoment(target: DatabaseTarget): Promise<DrillMoment> {
  const reader = connect(target, { max: 1 });
  const writer = connect(target, { max: 1 });
  try {
    for (let attempt = 0; attempt < TRIES; attempt++) {
      const name = `axe-drill-${randomBytes(5).toString("hex")}`;
      const moment = await reader.begin("isolation level repeatable read read only", async (tx) => {
        const [before] = await tx<{ s: string }[]>`select pg_current_snapshot()::text as s`;
        const [point] = await writer<{ lsn: string }[]>`select pg_create_restore_point(${name})::text as lsn`;
        const [after] = await writer<{ id: string }[]>`select pg_current_xact_id()::text as id`;
        const window = invisibleBefore(before!.s, BigInt(after!.id));
        if (window === undefined || (await committedAround(writer, window))) return undefined;
        return { name, lsn: parseLsn(point!.lsn)!, figures: await tableFigures(tx) };
      });
      if (moment) return moment;
      await Bun.sleep(20 + Math.floor(Math.random() * 80));
    }
    throw new BackupError(
      "PITR_DRILL_BUSY",
      `no quiet moment in ${TRIES} tries: a transaction committed between the snapshot and the restore point every time`,
      "run `axe-appliance backup verify` again at a quieter time",
    );
  } catch (error) {
    if (error instanceof BackupError) throw error;
    throw new BackupError(
      "PITR_DRILL_FAILED",
      `making a restore point on the live database failed: ${(error as Error).message}`,
      "the database user needs pg_create_restore_point and pg_switch_wal (a superuser, or GRANT EXECUTE on them)",
    );
  } finally {
    await Promise.all([reader.end({ timeout: 5 }), writer.end({ timeout: 5 })]);
  }
}

/**
 * The transactions the snapshot ("xmin:xmax:xip,...") does not see that had an id before `next`, an
 * id assigned after the restore point: any of them may have written its commit record before the
 * point. (A second snapshot's xmax would not do: it is one past the newest *finished* transaction,
 * and one that wrote its commit record before the point but had not finished yet, its backend
 * descheduled on a busy machine, can hold an id above it.) Undefined when there are too many to ask
 * about (a busy moment).
 */
export function invisibleBefore(snapshot: string, next: bigint): string[] | undefined {
  const [, xmaxText, xip] = snapshot.split(":");
  const xmax = BigInt(xmaxText!);
  if (next - xmax > 1000n) return undefined;
  const ids = new Set((xip ?? "").split(",").filter(Boolean).map(BigInt));
  for (let x = xmax; x < next; x++) ids.add(x);
  return [...ids].map(String);
}

/**
 * Whether any of `ids` may have committed before the restore point. A commit record is written
 * before the transaction is marked committed and leaves the "in progress" list, so one still in
 * progress may already be in the WAL before the point: wait (bounded) until each is decided. One
 * still undecided then is harmless only if its session is idle in its transaction (its COMMIT, if
 * any, comes after the point); anything else counts as "may have", and the drill tries another
 * moment rather than compare figures that could differ for no fault of the backup.
 */
async function committedAround(sql: Sql, ids: string[]): Promise<boolean> {
  if (!ids.length) return false;
  const deadline = Date.now() + 2000;
  for (;;) {
    const rows = await sql<{ id: string; status: string | null }[]>`
      select x::text as id, pg_xact_status(x) as status from pg_catalog.unnest(${ids}::xid8[]) x`;
    if (rows.some((r) => r.status === "committed")) return true;
    const undecided = rows.filter((r) => r.status === "in progress").map((r) => r.id);
    if (!undecided.length) return false;
    if (Date.now() > deadline) return !(await allIdleInTransaction(sql, undecided));
    await Bun.sleep(20);
  }
}

/** Whether each of `ids` belongs to a session that is idle inside its transaction (not committing). */
async function allIdleInTransaction(sql: Sql, ids: string[]): Promise<boolean> {
  const rows = await sql<{ id: string }[]>`
    select backend_xid::text as id from pg_catalog.pg_stat_activity
    where state in ('idle in transaction', 'idle in transaction (aborted)') and backend_xid is not null`;
  const idle = new Set(rows.map((r) => r.id));
  return ids.every((id) => idle.has(String(BigInt(id) & 0xffffffffn))); // backend_xid is the 32-bit xid
}

/** Closes the restore point's segment, waits (bounded) until it is archived, and ships it to every tier. */
export async function archiveAndShip(config: Config, target: DatabaseTarget): Promise<void> {
  const sql = connect(target, { max: 1 });
  try {
    const [row] = await sql<{ name: string }[]>`select pg_walfile_name(pg_switch_wal()) as name`;
    const timeoutMs = (config.appliance.backup.wal.archive_timeout_seconds + 120) * 1000;
    const archived = await pollUntil(
      async () => {
        const [a] = await sql<{ last: string | null }[]>`select last_archived_wal as last from pg_stat_archiver`;
        return a?.last && a.last >= row!.name ? true : undefined;
      },
      { timeoutMs, intervalMs: 250 },
    );
    if (!archived)
      throw new BackupError(
        "PITR_DRILL_FAILED",
        `segment ${row!.name} was not archived in ${timeoutMs / 1000} s`,
        "`axe-appliance backup status` says whether WAL archiving is failing",
      );
  } finally {
    await sql.end({ timeout: 5 });
  }
  // The timer's wal-ship may hold its lock: wait for it (bounded), then ship what it left.
  const shipped = await pollUntil(
    () =>
      shipWal(config).then(
        () => true,
        (error: unknown) => {
          if (error instanceof BackupError && error.code === "WAL_SHIP_RUNNING") return undefined;
          throw error;
        },
      ),
    { timeoutMs: 15 * 60_000, intervalMs: 2000 },
  );
  if (!shipped)
    throw new BackupError("PITR_DRILL_FAILED", "another wal-ship held its lock for 15 minutes", "is a wal-ship hung?");
}

/** Replays a scratch cluster from `tier` to the moment and compares its figures with the live ones there. */
export async function provePointInTime(
  config: Config,
  tier: TierName,
  moment: DrillMoment,
): Promise<{ point: string; tables: number; base: string; walSnapshots: number }> {
  const dir = join(config.paths.data, `pitr-drill-${randomBytes(4).toString("hex")}`);
  const restored = await restoreToPoint(config, {
    target: { kind: "name", name: moment.name, lsn: moment.lsn },
    tier,
    dir,
    scratch: true,
  });
  try {
    const sql = connect(clusterTarget(restored.cluster, restored.database), { max: 1 });
    const actual = await tableFigures(sql, new Map(moment.figures.map((f) => [f.table, f.method]))).finally(() =>
      sql.end({ timeout: 5 }),
    );
    const point = `restore point ${moment.name} (LSN ${formatLsn(moment.lsn)})`;
    const problems = compareFigures(moment.figures, actual);
    if (problems.length)
      throw new BackupError(
        "PITR_DRILL_MISMATCH",
        `${tier}: replayed to ${point}, the database differs from the live one there: ${problems.slice(0, 5).join("; ")}`,
        "keep this repository; run `axe-appliance backup verify` on the other tiers and report it",
      );
    return { point, tables: actual.length, base: restored.base, walSnapshots: restored.walSnapshots };
  } finally {
    await destroyCluster(restored.cluster);
  }
}
