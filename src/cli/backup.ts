import { join, resolve } from "node:path";
import type { Platform } from "../backup/schedule.ts";
import type { TierResult } from "../backup/tiers/types.ts";
import type { PointTarget } from "../backup/wal-catalogue.ts";
import { type Config, loadConfig } from "../config/load.ts";
import { parsePostgresUrl } from "../config/postgres-url.ts";
import { TIERS } from "../config/sections.ts";
import type { DatabaseTarget } from "../db/connect.ts";
import {
  CONFIG_OPTION,
  type Command,
  choiceFlag,
  type Invocation,
  JSON_OPTION,
  positional,
  stringFlag,
} from "../lib/cli.ts";
import { BackupError, describeError, EXIT, UsageError } from "../lib/errors.ts";
import { printableLines } from "../lib/terminal-text.ts";

const EXITS = `
Exit codes: 0 every tier attempted succeeded (skipped tiers, such as an absent cold SSD, do not count),
8 partial: some tiers failed and others succeeded, 7 backup failed, 2 usage, 3 config.`;

const config = (inv: Invocation): Config => loadConfig({ dir: stringFlag(inv, "config") });

/** Prints one line per tier; failures and warnings go to stderr. */
function printResults(results: TierResult[], exitCode: number, warnings: string[] = []): number {
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  for (const r of results) {
    if (r.outcome === "failed") process.stderr.write(describeError(r));
    else process.stdout.write(`${r.message}\n`);
    if (r.warning) process.stderr.write(`warning: ${r.warning}\n`);
  }
  if (exitCode === EXIT.backupPartial)
    process.stderr.write("partial: some tiers failed (exit 8); `axe-appliance backup status` shows each tier\n");
  return exitCode;
}

const TIER = { type: "string", value: "TIER", description: "local, ring, cold or all (default all)" } as const;

export const backupCommand: Command = {
  name: "backup",
  summary: "restic backups in three tiers: local, ring peer, cold SSD",
  details: `
Tier 1 local: the database dump (pg_dump -Fc streamed into restic) plus the config and state directories.
Tier 2 ring: the next customer's machine in customers.yaml over sftp, filled with restic copy.
Tier 3 cold: the SSD whenever its volume (and marker file) is mounted, filled with restic copy.
Passwords live in 0600 files under secrets_dir; restic reads them through RESTIC_PASSWORD_FILE.
${EXITS}`,
  subcommands: [
    {
      name: "init",
      summary: "create the repositories and their 0600 password files",
      usage: "[--config DIR]",
      details: `Never overwrites a password file. Ring and cold repositories are created from the local one
(init --copy-chunker-params) when reachable now, else by the first run that reaches them.${EXITS}`,
      options: { config: CONFIG_OPTION },
      run: async (inv) => {
        const { initBackup } = await import("../backup/init.ts");
        const { results, exitCode } = await initBackup(config(inv));
        return printResults(results, exitCode);
      },
    },
    {
      name: "run",
      summary: "dump the database and back up config and state, then copy to ring and cold",
      usage: "[--tier local|ring|cold|all] [--config DIR]",
      details: `Progress is a bar on a terminal and JSON lines on stderr otherwise. Retention (forget, then prune)
runs per tier only after that tier succeeded, and never on a tier marked damaged (see repair) unless
--allow-prune-damaged. A failed tier never stops the others.${EXITS}`,
      options: {
        tier: TIER,
        "allow-prune-damaged": {
          type: "boolean",
          description: "apply retention even on a tier marked damaged (prune deletes the damaged packs: the evidence)",
        },
        config: CONFIG_OPTION,
      },
      run: async (inv) => {
        const { runBackup, TIER_CHOICES } = await import("../backup/run.ts");
        const tier = choiceFlag(inv, "tier", TIER_CHOICES) ?? "all";
        const allowPruneDamaged = Boolean(inv.values["allow-prune-damaged"]);
        const { results, exitCode, warnings } = await runBackup(config(inv), tier, { allowPruneDamaged });
        return printResults(results, exitCode, warnings);
      },
    },
    {
      name: "wal-push",
      summary: "archive one WAL segment into the spool (Postgres' archive_command)",
      usage: "PATH NAME [--config DIR]",
      details: `Postgres runs it as archive_command = '<axe-appliance> backup wal-push "%p" "%f" --config DIR' in the
cluster's data directory, as the account Postgres runs as; with backup.wal.enabled the embedded cluster is set
up so (archive_mode, archive_command, archive_timeout = backup.wal.archive_timeout_seconds). The segment is
written to backup.wal.spool (default {data_dir}/wal-spool, which that account owns), fsynced with its directory,
before it exits 0; a repeat with the same bytes is 0, other bytes under the same name are refused.
Exit codes: 0 archived, 7 not archived (Postgres keeps the segment and retries), 2 usage.`,
      positionals: 2,
      options: { config: CONFIG_OPTION },
      run: async (inv) => {
        const { walPush } = await import("../backup/wal-push.ts");
        await walPush(config(inv), positional(inv, 0, "PATH (%p)"), positional(inv, 1, "NAME (%f)"));
        return 0;
      },
    },
    {
      name: "sftp-guard",
      summary: "(internal) the ring's sftp.command: relays restic's SFTP to the peer, refusing costly key files",
      usage: "-- COMMAND [ARG...]",
      details: `restic runs it as the ring's sftp.command, with the ssh to the peer as COMMAND. It relays the SFTP stream
unchanged, except that a key file (keys/<id>) whose scrypt parameters would take more than 128 MiB (or 4 GiB of
work) per try, or that is over 16 KiB or not JSON, ends in an SFTP failure: restic derives a key file with the
parameters written in it, and the peer writes them. Exit code: COMMAND's.`,
      positionals: "any",
      run: async (inv) => {
        const { runSftpGuard } = await import("../backup/sftp-guard.ts");
        if (!inv.positionals.length)
          throw new UsageError("BAD_ARGUMENT", `${inv.path}: no COMMAND after --`, `see '${inv.path} --help'`);
        return runSftpGuard(inv.positionals);
      },
    },
    {
      name: "wal-ship",
      summary: "ship the spooled WAL segments to every tier (its timer runs it every few minutes)",
      usage: "[--config DIR]",
      details: `The new segments in backup.wal.spool go to the local repository as one snapshot tagged wal, then to the
ring and the cold SSD with restic copy. A segment leaves the spool only once every enabled tier has it.${EXITS}`,
      options: { config: CONFIG_OPTION },
      run: async (inv) => {
        const { shipWal } = await import("../backup/wal-ship.ts");
        const { results, exitCode, warnings } = await shipWal(config(inv));
        return printResults(results, exitCode, warnings);
      },
    },
    {
      name: "repair",
      summary: "bring a tier marked damaged back: damaged packs moved aside, index rebuilt, new snapshot, full check",
      usage: "--tier local|ring|cold [--config DIR]",
      details: `A tier is marked damaged when a check, verify or prune finds damage; retention then pauses there.
repair runs \`restic check --read-data\`, moves the damaged packs into a quarantine directory (restic >= 0.16:
\`repair packs\`, which also salvages their intact blobs), rebuilds the index, takes a new snapshot of the live
data (ring and cold: copies from local again), forgets any snapshot that still misses data (its record is kept
in the quarantine directory), and clears the mark only when \`check --read-data\` passes.
Exit codes: 0 repaired (or nothing to repair), 7 not repaired: the tier stays marked damaged.`,
      options: { tier: { ...TIER, description: "local, ring or cold" }, config: CONFIG_OPTION },
      run: async (inv) => {
        const { repairBackup } = await import("../backup/repair.ts");
        const tier = choiceFlag(inv, "tier", TIERS);
        if (!tier) throw new UsageError("BAD_FLAG", `${inv.path}: --tier is required`, `see '${inv.path} --help'`);
        const { results, exitCode, warnings } = await repairBackup(config(inv), tier);
        return printResults(results, exitCode, warnings);
      },
    },
    {
      name: "status",
      summary: "per tier: last good snapshot age, last check, last proven restore, size, WAL RPO, what is wrong",
      usage: "[--json] [--config DIR]",
      details:
        "Reads {data_dir}/state/backup.json and the runner lock; with backup.wal.enabled also each tier's RPO (the age of the oldest archived change it lacks) against backup.wal.rpo_minutes and its last proven PITR. Exit 7 when any enabled tier is older than its limit, failed last time or is marked damaged, a tier's RPO is over its limit, WAL archiving fails, or a runner is hung past the longest a run may take.",
      options: { json: JSON_OPTION, config: CONFIG_OPTION },
      run: async (inv) => {
        const [{ backupContext, tierLimits }, { readStatus, renderReport, reportTiers }, lock] = await Promise.all([
          import("../backup/context.ts"),
          import("../backup/status.ts"),
          import("../backup/lock.ts"),
        ]);
        const ctx = backupContext(config(inv));
        const status = readStatus(ctx.stateDir);
        const reports = reportTiers(status, tierLimits(ctx));
        const runner = lock.hungRunner(lock.runnerLockPath(ctx), lock.runBudgetMs(ctx));
        const archiving = ctx.settings.wal.enabled
          ? (await import("../backup/wal-status.ts")).walArchiving(ctx, status)
          : undefined;
        const wal = archiving?.problem;
        const bad =
          Boolean(runner || wal) ||
          reports.some((r) => r.problems.length > 0) ||
          Boolean(archiving?.tiers.some((t) => t.problems.length > 0));
        if (inv.values.json)
          process.stdout.write(
            `${JSON.stringify({ ok: !bad, tiers: reports, runner: runner ?? null, wal: wal ?? null, walTiers: archiving?.tiers ?? null }, null, 2)}\n`,
          );
        // errors quote the ring peer, restic and the Postgres account's spool file: nothing in them may steer a terminal
        else
          process.stdout.write(
            printableLines(
              `${renderReport(reports)}${archiving ? archiving.text : ""}${runner ? `! ${runner}\n` : ""}${wal ? `! ${wal}\n` : ""}`,
            ),
          );
        return bad ? EXIT.backup : EXIT.ok;
      },
    },
    {
      name: "verify",
      summary: "restic check (a data subset) plus a restore drill on every reachable tier",
      usage: "[--config DIR]",
      details: `The drill restores the latest dump into a scratch database, compares row counts and checksums per
table with the figures taken at dump time, drops the scratch database and records the last proven restore.
With backup.wal.enabled it also makes a restore point on the live database (at a moment no commit is in
doubt), ships it, replays a scratch cluster from each tier to it and compares the figures there: the last
proven PITR.${EXITS}`,
      options: { config: CONFIG_OPTION },
      run: async (inv) => {
        const { verifyBackups } = await import("../backup/drill.ts");
        const { results, exitCode, warnings } = await verifyBackups(config(inv));
        return printResults(results, exitCode, warnings);
      },
    },
    {
      name: "restore",
      summary: "restore a snapshot into a database or a directory, or the database to a point in time",
      usage:
        "--snapshot ID|latest (--to-database URL | --to-dir DIR) | (--to-time T | --to-lsn L | --latest) --to-cluster DIR; [--tier local|ring|cold] [--no-owner] [--config DIR]",
      details: `--to-database streams the dump into pg_restore in one transaction; the database must exist and be empty.
The URL carries no password: libpq reads it from PGPASSFILE or ~/.pgpass (or database.password_file when
the URL names the configured server). --no-owner on a new machine whose entity roles do not exist yet.
--to-dir restores any snapshot's files (config, state, secrets) into DIR: a new directory (made 0700), or
one of root's that is 0700 already; a link or another account's directory is refused.
--to-time, --to-lsn or --latest (with backup.wal.enabled) build a new cluster in --to-cluster DIR (never the
live one) from the tier alone: the newest base backup that ends before the target and the archived WAL after
it (on the local tier also the spool), replayed to the target and promoted. It is left stopped, listening only
on DIR-socket; DIR/postgres.log says what it replayed. A target the tier cannot reach is refused with the range
it reaches. T is an ISO 8601 time such as 2026-11-30T14:01:00+09:00 (without an offset: this machine's zone).
Exit codes: 0 restored, 7 failed (nothing half-restored into a database), 2 usage.`,
      options: {
        "to-time": { type: "string", value: "T", description: "point-in-time restore to time T (ISO 8601)" },
        "to-lsn": {
          type: "string",
          value: "L",
          description: "point-in-time restore to WAL position L (such as 0/3000148)",
        },
        latest: { type: "boolean", description: "point-in-time restore to the newest WAL the tier holds" },
        "to-cluster": {
          type: "string",
          value: "DIR",
          description: "the new cluster's directory (point-in-time restore)",
        },
        snapshot: { type: "string", value: "ID", description: "snapshot id (or prefix), or latest" },
        "to-database": {
          type: "string",
          value: "URL",
          description: "postgres://user@host:port/db to restore a dump into",
        },
        "to-dir": { type: "string", value: "DIR", description: "directory to restore files into" },
        tier: { type: "string", value: "TIER", description: "repository to read: local (default), ring or cold" },
        "no-owner": {
          type: "boolean",
          description: "do not restore ownership and grants (pg_restore --no-owner --no-acl)",
        },
        config: CONFIG_OPTION,
      },
      run: async (inv) => restoreCommand(inv),
    },
    {
      name: "schedule",
      summary: "print, or with --install write, the launchd/systemd timers",
      usage: "[--install] [--platform launchd|systemd] [--dir DIR] [--config DIR]",
      details:
        "Daily `backup run --tier all` at 02:30, weekly `backup verify` on Sunday at 04:30, and with backup.wal.enabled `backup wal-ship` every backup.wal.ship_every_minutes (5). --install writes the files and prints the command that enables them.",
      options: {
        install: { type: "boolean", description: "write the unit files instead of printing them" },
        platform: { type: "string", value: "NAME", description: "launchd or systemd (default: this machine's)" },
        dir: {
          type: "string",
          value: "DIR",
          description: "where --install writes (default /Library/LaunchDaemons or /etc/systemd/system)",
        },
        config: CONFIG_OPTION,
      },
      run: async (inv) => {
        const { defaultPlatform, defaultUnitDir, installUnits, scheduleUnits, selfProgram } = await import(
          "../backup/schedule.ts"
        );
        const cfg = config(inv);
        const platform: Platform = choiceFlag(inv, "platform", ["launchd", "systemd"] as const) ?? defaultPlatform();
        const units = scheduleUnits(platform, {
          program: selfProgram(),
          configDir: cfg.dir,
          logDir: join(cfg.paths.data, "logs"),
          ...(cfg.appliance.backup.wal.enabled ? { walEveryMinutes: cfg.appliance.backup.wal.ship_every_minutes } : {}),
        });
        if (!inv.values.install) {
          for (const u of units) process.stdout.write(`# ${u.name}\n${u.text}\n`);
          return EXIT.ok;
        }
        const { paths, enable } = installUnits(
          platform,
          units,
          resolve(stringFlag(inv, "dir") ?? defaultUnitDir(platform)),
        );
        process.stdout.write(`wrote ${paths.join(", ")}\nenable them with: ${enable}\n`);
        return EXIT.ok;
      },
    },
  ],
};

async function restoreCommand(inv: Invocation): Promise<number> {
  const point = pointTarget(inv, (await import("../backup/wal-catalogue.ts")).parseLsn);
  if (point) return pointRestoreCommand(inv, point);
  if (inv.values["to-cluster"])
    throw new UsageError(
      "BAD_FLAG",
      `${inv.path}: --to-cluster goes with --to-time, --to-lsn or --latest`,
      `see '${inv.path} --help'`,
    );
  const id = stringFlag(inv, "snapshot", true);
  const url = stringFlag(inv, "to-database");
  const dir = stringFlag(inv, "to-dir");
  if (!url === !dir)
    throw new UsageError(
      "BAD_FLAG",
      `${inv.path}: give exactly one of --to-database URL or --to-dir DIR`,
      `see '${inv.path} --help'`,
    );
  const tier = choiceFlag(inv, "tier", TIERS) ?? "local";
  const [{ backupContext, tierRepo }, { findSnapshot, restoreDump, restoreToDir }, { openDatabase }, { snapshotTime }] =
    await Promise.all([
      import("../backup/context.ts"),
      import("../backup/restore.ts"),
      import("../db/connect.ts"),
      import("../backup/status.ts"),
    ]);
  const cfg = config(inv);
  const ctx = backupContext(cfg);
  const { repo, why } = tierRepo(ctx, tier);
  if (!repo)
    throw new BackupError(
      "TIER_UNAVAILABLE",
      `${inv.path}: the ${tier} tier cannot be read here: ${why}`,
      tier === "cold"
        ? "plug in the cold SSD (backup.cold.volume and its marker file in appliance.yaml), or restore from --tier local or ring"
        : "restore from --tier local, or set up the ring in customers.yaml and appliance.yaml",
    );
  if (dir) {
    const snapshot = await findSnapshot(ctx, repo, id, "files");
    await restoreToDir(ctx, repo, snapshot, resolve(dir));
    process.stdout.write(
      `restored snapshot ${snapshot.id.slice(0, 8)} (${snapshot.paths.join(", ")}) into ${resolve(dir)}; it was taken ${snapshotTime(snapshot.time)}, from the ${tier} tier\n`,
    );
    return EXIT.ok;
  }
  const snapshot = await findSnapshot(ctx, repo, id, "db");
  const db = await openDatabase(cfg);
  try {
    const target = restoreTarget(db.target, url!);
    await restoreDump(ctx, repo, snapshot, target, inv.values["no-owner"] ? ["--no-owner", "--no-acl"] : []);
    process.stdout.write(
      `restored database dump ${snapshot.id.slice(0, 8)} from the ${tier} tier into ${target.database} on ${target.host}:${target.port}; it was taken ${snapshotTime(snapshot.time)}\n`,
    );
    return EXIT.ok;
  } finally {
    await db.embedded?.stop();
  }
}

/** The URL's server; the configured password applies only when the URL names the configured server and user. */
function restoreTarget(configured: DatabaseTarget, url: string): DatabaseTarget {
  const parsed = parsePostgresUrl(url);
  if (!parsed)
    throw new UsageError(
      "BAD_FLAG",
      `--to-database: '${url}' is not a postgres:// URL; expected postgres://user@host:port/database`,
    );
  if (parsed.hasPassword)
    throw new UsageError(
      "BAD_FLAG",
      "--to-database: the URL holds a password; put it in a pgpass file (PGPASSFILE) instead, never on the command line",
    );
  const { host, port, user, database } = parsed;
  const target = { host, port, user, database };
  if (!target.database) throw new UsageError("BAD_FLAG", "--to-database: the URL names no database");
  const same = configured.host === target.host && configured.port === target.port && configured.user === target.user;
  return same ? { ...target, password: configured.password, passfile: configured.passfile } : target;
}

/** --to-time, --to-lsn or --latest, checked; undefined when none is given (a snapshot restore). */
function pointTarget(inv: Invocation, parseLsn: (text: string) => bigint | undefined): PointTarget | undefined {
  const time = stringFlag(inv, "to-time");
  const lsn = stringFlag(inv, "to-lsn");
  const latest = Boolean(inv.values.latest);
  const given = [time, lsn, latest || undefined].filter(Boolean).length;
  if (!given) return undefined;
  const usage = (message: string) => new UsageError("BAD_FLAG", `${inv.path}: ${message}`, `see '${inv.path} --help'`);
  if (given > 1) throw usage("give one of --to-time, --to-lsn or --latest");
  if (inv.values.snapshot || inv.values["to-database"] || inv.values["to-dir"])
    throw usage(
      "a point-in-time restore builds a new cluster: --to-cluster DIR, not --snapshot, --to-database or --to-dir",
    );
  if (time !== undefined) {
    const at = Date.parse(time);
    if (Number.isNaN(at))
      throw usage(`--to-time '${time}' is not a time; expected ISO 8601 such as 2026-11-30T14:01:00+09:00`);
    return { kind: "time", time: new Date(at) };
  }
  if (lsn !== undefined) {
    const value = parseLsn(lsn);
    if (value === undefined) throw usage(`--to-lsn '${lsn}' is not a WAL position; expected such as 0/3000148`);
    return { kind: "lsn", lsn: value, text: lsn.toUpperCase() };
  }
  return { kind: "latest" };
}

async function pointRestoreCommand(inv: Invocation, target: PointTarget): Promise<number> {
  const dir = stringFlag(inv, "to-cluster");
  if (!dir)
    throw new UsageError(
      "BAD_FLAG",
      `${inv.path}: --to-cluster DIR is required`,
      "name a new directory for the cluster",
    );
  const tier = choiceFlag(inv, "tier", TIERS) ?? "local";
  const [{ restoreToPoint }, { handOver }] = await Promise.all([
    import("../backup/pitr.ts"),
    import("../backup/pitr-cluster.ts"),
  ]);
  const restored = await restoreToPoint(config(inv), { target, tier, dir: resolve(dir) });
  await handOver(restored.cluster);
  const { cluster } = restored;
  const goal =
    target.kind === "time"
      ? target.time.toISOString()
      : target.kind === "lsn"
        ? `LSN ${target.text}`
        : "the newest WAL";
  process.stdout.write(
    [
      `restored the ${tier} tier to ${goal}: base backup ${restored.base} and ${restored.walSnapshots} WAL snapshot${restored.walSnapshots === 1 ? "" : "s"}, replayed and promoted`,
      `  last transaction replayed: ${restored.reachedTime ?? "none"}${restored.stoppedAt ? ` (${restored.stoppedAt})` : ""}`,
      `  the cluster is in ${cluster.dir} (stopped; database ${restored.database}); start it as '${cluster.account.name}':`,
      `    pg_ctl -D ${cluster.pgdata} -l ${join(cluster.dir, "postgres.log")} start   # listens only on ${cluster.socketDir}, port ${cluster.port}`,
      "",
    ].join("\n"),
  );
  return EXIT.ok;
}
