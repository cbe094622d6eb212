/**
 * A new cluster, built from a base backup and archived WAL, replayed to a point and promoted: the
 * body of `backup restore --to-time/--to-lsn/--latest` and of the point-in-time drill. It lives in
 * a directory of its own, never the live cluster's: `DIR/pgdata` (the Postgres account's, as the
 * embedded cluster is), `DIR-socket` (its only listener), and, while it replays, `DIR-wal` (ours,
 * readable by the account's group) with the WAL that restore_command copies from. The base backup
 * streams from restic into tar, which runs as the account, so it writes nothing the account could
 * not write anyway; we never write inside DIR ourselves.
 */
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import {
  assertRootsPath,
  type ClusterAccount,
  prepareSocketDir,
  readOwnedFile,
  runAsAccount,
  writeAsAccount,
} from "../db/cluster-files.ts";
import { connect, type DatabaseTarget } from "../db/connect.ts";
import { assertReachable } from "../db/embedded.ts";
import { findPostgresTools, SERVER_TOOLS } from "../db/postgres-tools.ts";
import { setRolePassword } from "../db/role-password.ts";
import { BackupError } from "../lib/errors.ts";
import { pollUntil } from "../lib/poll.ts";
import { describeExit, lastLines, runPipeline, runProgram } from "../lib/program.ts";
import { BASE_FILENAME } from "./basebackup.ts";
import type { BackupContext } from "./context.ts";
import type { Repo, Snapshot } from "./restic.ts";
import { resticFailure } from "./restic.ts";
import { readSpoolFile, WAL_NAME } from "./spool.ts";
import { assertOwnDirectory, makeOwnDirectory } from "./target-dir.ts";
import { formatLsn, type PointTarget } from "./wal-catalogue.ts";

/** Socket only; the number only names the socket file in DIR-socket, so any will do. */
const PORT = 5432;
const BEGIN = "# axe-appliance recovery begin";
const END = "# axe-appliance recovery end";

export interface PointCluster {
  dir: string;
  pgdata: string;
  socketDir: string;
  walDir: string;
  port: number;
  account: ClusterAccount;
  /** The role we connect as (trust on the private socket while it replays): the one the live database has. */
  user: string;
}

/** A target directory that is new (or empty), not the live cluster's, in a path that is ours up to /. */
export async function prepareCluster(
  dir: string,
  live: string,
  account: ClusterAccount,
  user: string,
): Promise<PointCluster> {
  const at = resolve(dir);
  const inside = (child: string, parent: string) => {
    const r = relative(parent, child);
    return r === "" || (!r.startsWith("..") && !r.startsWith("/"));
  };
  if (inside(at, live) || inside(live, at))
    throw new BackupError(
      "PITR_TARGET_LIVE",
      `${at} is the live cluster's directory (or holds it); a restore never writes there`,
      "restore into a new directory, e.g. /opt/axe/data/restored; `docs/operations.md` says how to make it the live one",
    );
  const walDir = `${at}-wal`;
  const us = process.getuid?.() ?? 0;
  // The parent may be open to every account (a sticky /tmp): another one may have named DIR or DIR-wal first.
  const code = "PITR_TARGET_UNSAFE";
  const own = { [at]: { mode: 0o700, owners: [us, account.uid], code }, [walDir]: { mode: 0o750, owners: [us], code } };
  for (const path of [at, walDir]) assertOwnDirectory(path, own[path]!);
  for (const path of [at, walDir])
    if (existsSync(path) && readdirSync(path).length)
      throw new BackupError(
        "PITR_TARGET_EXISTS",
        `${path} exists and is not empty; a restore builds a new cluster`,
        "name a new directory, or remove this one if it is an old restore",
      );
  mkdirSync(dirname(at), { recursive: true, mode: 0o755 });
  assertRootsPath(dirname(at), account);
  if (account.uid !== us) assertReachable(at, account.name);
  makeOwnDirectory(at, own[at]!);
  if (lstatSync(at).uid !== account.uid) lchownSync(at, account.uid, account.gid); // ours, checked: no swap
  const pgdata = join(at, "pgdata");
  await runAsAccount(account, `make ${pgdata}`, 'mkdir -m 700 "$1"', [pgdata]);
  makeOwnDirectory(walDir, own[walDir]!);
  lchownSync(walDir, process.getuid?.() ?? 0, account.gid); // ours; the account's group reads it
  chmodSync(walDir, 0o750);
  const socketDir = prepareSocketDir(at, PORT, account);
  return { dir: at, pgdata, socketDir, walDir, port: PORT, account, user };
}

/** restic dump of the base backup's tar straight into tar -x, which runs as the account. */
export async function extractBase(ctx: BackupContext, repo: Repo, base: Snapshot, cluster: PointCluster) {
  const restic = ctx.restic();
  const args = ["dump", base.id, `/${BASE_FILENAME}`];
  const deadlineMs = restic.deadlineMs(repo, args);
  const piped = await runPipeline(
    { argv: [restic.bin, ...restic.args(repo, args)], options: { env: restic.env(repo), deadlineMs } },
    {
      argv: ["tar", "-x", "-f", "-", "-C", cluster.pgdata],
      options: { runAs: cluster.account, deadlineMs, deadlineSignal: "SIGTERM" },
    },
  );
  const dump = piped.producer;
  if (dump.status !== 0 && !piped.producerStopped)
    throw resticFailure(repo, `reading base backup ${base.id.slice(0, 8)}`, { ...dump, code: dump.status, deadlineMs });
  if (piped.consumer.status !== 0)
    throw new BackupError(
      "PITR_EXTRACT_FAILED",
      `unpacking base backup ${base.id.slice(0, 8)} into ${cluster.pgdata} failed (${describeExit(piped.consumer, deadlineMs)}): ${lastLines(piped.consumer.stderr)}`,
      "is the disk full? remove the directory and try again",
    );
}

/** WAL snapshots restored into DIR-wal (flat, ours, 0640 for the account's group). */
export async function fetchWal(ctx: BackupContext, repo: Repo, snapshots: Snapshot[], cluster: PointCluster) {
  const fetch = join(cluster.walDir, ".fetch");
  for (const snapshot of snapshots) {
    rmSync(fetch, { recursive: true, force: true });
    mkdirSync(fetch, { mode: 0o700 });
    await ctx
      .restic()
      .must(repo, ["restore", snapshot.id, "--target", fetch], `fetching WAL snapshot ${snapshot.id.slice(0, 8)}`);
    for (const entry of readdirSync(fetch, { recursive: true, withFileTypes: true }))
      if (entry.isFile() && WAL_NAME.test(entry.name))
        publishWal(cluster, entry.name, join(entry.parentPath, entry.name));
  }
  rmSync(fetch, { recursive: true, force: true });
}

/** The local tier's spooled segments, read through spool.ts's checked descriptors. */
export function fetchSpool(spool: string, names: string[], cluster: PointCluster): void {
  for (const name of names) {
    const temp = join(cluster.walDir, `.${name}.${randomBytes(4).toString("hex")}`);
    writeFileSync(temp, readSpoolFile(spool, name), { mode: 0o600, flag: "wx" });
    publishWal(cluster, name, temp);
  }
}

function publishWal(cluster: PointCluster, name: string, from: string): void {
  lchownSync(from, process.getuid?.() ?? 0, cluster.account.gid);
  chmodSync(from, 0o640);
  renameSync(from, join(cluster.walDir, name));
}

/** postgresql.auto.conf's last word (read after postgresql.conf and its includes): our socket, no archiving, the target. */
export async function writeRecoverySettings(cluster: PointCluster, target: PointTarget): Promise<void> {
  const quote = (value: string) => `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
  const hba = join(cluster.walDir, "pg_hba.conf");
  // Trust only on the private socket (DIR-socket is the account's, 0700): the live cluster's passwords are not ours to read.
  writeFileSync(hba, "local all all trust\n", { mode: 0o640 });
  lchownSync(hba, process.getuid?.() ?? 0, cluster.account.gid);
  const goal =
    target.kind === "time"
      ? [`recovery_target_time = ${quote(postgresTime(target.time))}`, "recovery_target_action = 'promote'"]
      : target.kind === "lsn"
        ? [`recovery_target_lsn = ${quote(formatLsn(target.lsn))}`, "recovery_target_action = 'promote'"]
        : target.kind === "name"
          ? [`recovery_target_name = ${quote(target.name)}`, "recovery_target_action = 'promote'"]
          : [];
  const block = [
    "",
    "# axe-appliance backup restore: this cluster's own socket, and no archiving: it is not the live cluster",
    "listen_addresses = ''",
    `port = ${cluster.port}`,
    `unix_socket_directories = ${quote(cluster.socketDir)}`,
    "unix_socket_permissions = 0700",
    "archive_mode = off",
    BEGIN,
    `hba_file = ${quote(hba)}`,
    `restore_command = ${quote(`cp "${cluster.walDir}/%f" "%p"`)}`,
    "recovery_target_timeline = 'latest'",
    ...goal,
    END,
    "",
  ].join("\n");
  // A server configured outside its data directory (Debian's /etc/postgresql) left no postgresql.conf or pg_hba.conf here.
  await runAsAccount(
    cluster.account,
    `write the recovery settings in ${cluster.pgdata}`,
    'cd "$1" && cat >> postgresql.auto.conf && : > recovery.signal && rm -f postmaster.pid && ' +
      '{ [ -f postgresql.conf ] || echo "# written by axe-appliance backup restore" > postgresql.conf; } && ' +
      '{ [ -f pg_hba.conf ] || printf "local all all scram-sha-256\\nhost all all 127.0.0.1/32 scram-sha-256\\n" > pg_hba.conf; }',
    [cluster.pgdata],
    block,
  );
}

/** The form recovery_target_time's check accepts (it refuses ISO 8601's T and Z): "2026-11-30 05:01:00.000+00". */
const postgresTime = (time: Date) => time.toISOString().replace("T", " ").replace("Z", "+00");

const toolDir = () => findPostgresTools(SERVER_TOOLS);

async function pgCtl(cluster: PointCluster, args: string[], deadlineMs: number) {
  return runProgram([join(toolDir(), "pg_ctl"), "-D", cluster.pgdata, ...args], {
    runAs: cluster.account,
    deadlineMs,
    deadlineSignal: "SIGTERM",
  });
}

export type ReplayOutcome =
  | { ok: true; reachedTime?: string; stoppedAt?: string }
  | { ok: false; endedEarly: boolean; lastCommit?: string; reason: string };

/**
 * Starts the cluster and waits (up to `deadlineMs`) until it has promoted: replayed to the target, or
 * to the end of the WAL for --latest. Postgres' own refusals come back as the outcome.
 */
export async function replay(cluster: PointCluster, deadlineMs: number): Promise<ReplayOutcome> {
  const log = join(cluster.dir, "postgres.log");
  const started = await pgCtl(
    cluster,
    ["-l", log, "-w", "-t", String(Math.ceil(deadlineMs / 1000)), "start"],
    deadlineMs,
  );
  const admin = connect(target(cluster, "postgres"), { max: 1 });
  try {
    const promoted =
      started.code === 0
        ? await pollUntil(
            async () => {
              const rows = await admin<{ recovering: boolean }[]>`select pg_is_in_recovery() as recovering`.catch(
                () => undefined,
              );
              if (rows) return rows[0]!.recovering ? undefined : true;
              return (await pgCtl(cluster, ["status"], 30_000)).code === 0 ? undefined : false;
            },
            { timeoutMs: deadlineMs, intervalMs: 250 },
          )
        : false;
    if (promoted) {
      const [row] = await admin<{ t: Date | null }[]>`select pg_last_xact_replay_timestamp() as t`;
      const stopped = /recovery stopping (?:before|after) .*$/m.exec(readLog(cluster, log))?.[0];
      return { ok: true, reachedTime: row?.t?.toISOString(), ...(stopped ? { stoppedAt: stopped } : {}) };
    }
    const text = readLog(cluster, log);
    const { fatal, endedEarly } = replayFailure(text);
    const lastCommit = /last completed transaction was at log time (.*)$/m.exec(text)?.[1]?.trim();
    if (promoted === undefined) await pgCtl(cluster, ["-m", "immediate", "stop"], 60_000);
    return {
      ok: false,
      endedEarly,
      ...(lastCommit ? { lastCommit } : {}),
      reason:
        promoted === undefined
          ? `replay did not finish in ${Math.round(deadlineMs / 1000)} s`
          : (fatal ?? lastLines(`${started.stdout}\n${started.stderr}\n${text}`)),
    };
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** What the server says to a connection it cannot take yet: our own polls while it replays, not why it stopped. */
const REFUSED_CONNECTION =
  /^the database system is (?:in recovery mode|starting up|shutting down|not yet accepting connections|not accepting connections)/;

/**
 * Why a replay stopped, from the server's log: its last FATAL or PANIC that is not the refusal of a
 * connection (the poll above asks while it replays, and each refusal is logged as a FATAL, after the
 * startup process's own when the two race), and whether the WAL ended before the target.
 */
export function replayFailure(log: string): { fatal?: string; endedEarly: boolean } {
  const fatals = [...log.matchAll(/^.*(?:FATAL|PANIC):\s+(.*)$/gm)].map((m) => m[1]!.trim());
  const fatal = fatals.filter((f) => !REFUSED_CONNECTION.test(f)).at(-1) ?? fatals.at(-1);
  return {
    ...(fatal ? { fatal } : {}),
    endedEarly: fatals.some((f) => f.startsWith("recovery ended before configured recovery target was reached")),
  };
}

/** Connection details for the restored cluster over its private socket. */
export function target(cluster: PointCluster, database: string): DatabaseTarget {
  return { host: cluster.socketDir, port: cluster.port, user: cluster.user, database };
}

function readLog(cluster: PointCluster, log: string): string {
  try {
    return readOwnedFile(log, [cluster.account.uid], cluster.account).slice(-200_000);
  } catch {
    return "";
  }
}

export async function stopCluster(cluster: PointCluster): Promise<void> {
  if ((await pgCtl(cluster, ["status"], 30_000)).code !== 0) return;
  const stop = await pgCtl(cluster, ["-m", "fast", "-w", "-t", "120", "stop"], 150_000);
  if (stop.code !== 0) await pgCtl(cluster, ["-m", "immediate", "stop"], 60_000);
}

/**
 * Leaves a restored cluster for the operator: a password of its own for the embedded superuser
 * (in DIR/superuser.password, as the embedded cluster keeps it), stopped, the recovery settings and
 * the WAL directory gone; only its socket and "no archiving" stay in postgresql.auto.conf.
 */
export async function handOver(cluster: PointCluster): Promise<void> {
  if (existsSync(join(cluster.pgdata, "axe.conf")) && cluster.user === "axe") {
    const password = randomBytes(24).toString("base64url");
    const sql = connect(target(cluster, "postgres"), { max: 1 });
    try {
      await setRolePassword(sql, "axe", password);
    } finally {
      await sql.end({ timeout: 5 });
    }
    await writeAsAccount(cluster.account, join(cluster.dir, "superuser.password"), `${password}\n`);
  }
  await stopCluster(cluster);
  await runAsAccount(
    cluster.account,
    `remove the recovery settings from ${cluster.pgdata}`,
    'cd "$1" && sed "/^$2\\$/,/^$3\\$/d" postgresql.auto.conf > postgresql.auto.conf.tmp-$$ && mv -f postgresql.auto.conf.tmp-$$ postgresql.auto.conf',
    [cluster.pgdata, BEGIN, END],
  );
  rmSync(cluster.walDir, { recursive: true, force: true });
}

/**
 * The drill's scratch cluster: stopped and removed with its socket and WAL directories. What the
 * account owns it empties itself (a root `rm -r` there could be steered by a link swapped in
 * midway); we remove only the empty directories and our WAL directory.
 */
export async function destroyCluster(cluster: PointCluster): Promise<void> {
  await stopCluster(cluster).catch(() => undefined);
  for (const dir of [cluster.dir, cluster.socketDir])
    await runAsAccount(cluster.account, `empty ${dir}`, 'find "$1" -mindepth 1 -delete', [dir]).catch(() => undefined);
  for (const dir of [cluster.dir, cluster.socketDir]) if (existsSync(dir)) rmdirSync(dir);
  rmSync(cluster.walDir, { recursive: true, force: true });
}
