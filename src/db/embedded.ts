/**
 * The embedded default: a private Postgres cluster under the data directory, created on first
 * use with a random superuser password (scram), listening on a Unix socket only, started when
 * needed and reused next time. Whoever starts it stops it.
 *
 * @example
 * const pg = await EmbeddedPostgres.open({ dir: join(dataDir, "postgres") });
 * const sql = connect(pg.target("frame"));
 * await pg.stop();
 */
import { randomBytes } from "node:crypto";
import { existsSync, lchownSync, lstatSync, mkdirSync, rmSync, statSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { lookupAccount } from "../lib/account.ts";
import { DatabaseError } from "../lib/errors.ts";
import { describeExit, lastLines, ProgramStartError, runProgram } from "../lib/program.ts";
import type { ArchiveSettings } from "./archiving.ts";
import {
  assertRootsPath,
  type ClusterAccount,
  checkOwned,
  prepareAccountDir,
  prepareSocketDir,
  readOwnedFile,
  runAsAccount,
  writeAsAccount,
} from "./cluster-files.ts";
import { connect, sessionName } from "./pool.ts";
import { findPostgresTools, SERVER_TOOLS } from "./postgres-tools.ts";
import type { DatabaseTarget } from "./target.ts";

export interface EmbeddedOptions {
  /** The cluster's home: pgdata/, the superuser password and the server log live here. */
  dir: string;
  /** OS user Postgres runs as when we are root (Postgres refuses to run as root). */
  runAs?: string;
  /** Port number in the socket's name; no TCP port is opened. */
  port?: number;
  /** Throwaway clusters (tests): skip fsync at initdb and at run time. Never for real data. */
  throwaway?: boolean;
  /** Continuous WAL archiving into this spool (backup.wal.enabled); archive_mode takes effect at the next start. */
  archive?: ArchiveSettings;
  /** False: a cluster that is down stays down (for stopping it); one that was never made is an error. */
  start?: boolean;
}

/** How long a stop waits to hear whether other processes use the cluster. */
const ASK_OTHERS_MS = 10_000;

/** The embedded cluster's superuser (a restored copy of it has the same). */
export const EMBEDDED_SUPERUSER = "axe";
const INCLUDE_LINE = "include_if_exists = 'axe.conf'";

export class EmbeddedPostgres {
  private constructor(
    readonly dir: string,
    readonly socketDir: string,
    readonly port: number,
    private readonly bin: string,
    /** The account Postgres runs as: another one when we are root, else ours. */
    private readonly account: ClusterAccount,
    private readonly password: string,
    /** True when this process started the server (and so stops it). */
    readonly startedHere: boolean,
  ) {}

  static async open(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
    const bin = findPostgresTools(SERVER_TOOLS);
    const port = options.port ?? 5432;
    const account = await clusterAccount(options.runAs ?? "postgres");
    const { dir } = options;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    assertRootsPath(dirname(dir), account);
    checkOwned(dir, "dir", [account.uid, process.getuid?.() ?? 0], account);
    if (account.uid !== process.getuid?.()) assertReachable(dir, account.name);
    const pgdata = join(dir, "pgdata");
    const throwaway = options.throwaway ?? false;
    const made = checkOwned(pgdata, "dir", [account.uid], account);
    if (!made || !existsSync(join(pgdata, "PG_VERSION"))) {
      if (options.start === false)
        throw new DatabaseError("DB_NO_CLUSTER", `there is no embedded cluster in ${dir}`, "nothing to stop");
      await initdb(bin, dir, pgdata, account, throwaway);
    }
    const password = readOwnedFile(join(dir, "superuser.password"), ownersOf(account), account).trim();
    const socketDir = prepareSocketDir(dir, port, account);
    if (options.archive) prepareAccountDir(options.archive.spool, account);
    await writeSettings(pgdata, port, socketDir, account, throwaway, options.archive);
    const make = (socket: string, startedHere: boolean) =>
      new EmbeddedPostgres(dir, socket, port, bin, account, password, startedHere);
    const cluster = make(socketDir, false);
    if (await cluster.isRunning(pgdata)) return make(runningSocketDir(pgdata, account) ?? socketDir, false);
    if (options.start === false) return cluster;
    checkOwned(join(dir, "postgres.log"), "file", [account.uid], account);
    await cluster.run("pg_ctl", ["-D", pgdata, "-l", join(dir, "postgres.log"), "-w", "-t", "60", "start"]);
    return make(socketDir, true);
  }

  /** Connection target for a database in this cluster, as the superuser, over the socket. */
  target(database = "postgres"): DatabaseTarget {
    return { host: this.socketDir, port: this.port, user: EMBEDDED_SUPERUSER, password: this.password, database };
  }

  /**
   * Stops the server if this process started it and no one else is connected (fast shutdown:
   * sessions end, data is safe). Whoever started it is often not its last user: blue starts it at
   * boot, green serves from it, and a deploy restarts blue; a backup or `token issue` may have
   * started it while the colors were down. So a session of another process keeps it running, for
   * good on a machine whose colors take turns (the system's shutdown stops it there). `force`
   * stops it whoever started it and whoever is connected.
   */
  async stop(options: { force?: boolean } = {}): Promise<"stopped" | "in use" | "not ours" | "not running"> {
    if (!this.startedHere && !options.force) return "not ours";
    const pgdata = join(this.dir, "pgdata");
    if (!(await this.isRunning(pgdata))) return "not running";
    if (!options.force && (await this.othersConnected())) return "in use";
    await this.run("pg_ctl", ["-D", pgdata, "-m", "fast", "-w", "-t", "60", "stop"]);
    return "stopped";
  }

  /**
   * Restarts the running server (fast: sessions end, and clients connect again), so settings read
   * only at start (archive_mode) apply; returns the new postmaster's PID.
   */
  async restart(): Promise<number | undefined> {
    const pgdata = join(this.dir, "pgdata");
    await this.run("pg_ctl", [
      "-D",
      pgdata,
      "-l",
      join(this.dir, "postgres.log"),
      "-m",
      "fast",
      "-w",
      "-t",
      "60",
      "restart",
    ]);
    return this.serverPid();
  }

  /**
   * True when another process has a client session open (ours, just closed, may still be listed
   * for a moment: they are known by their application_name); false too when none can be asked.
   */
  private async othersConnected(): Promise<boolean> {
    const sql = connect(this.target(), { max: 1 });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const asked = sql<Array<{ others: number }>>`
        select count(*)::int as others from pg_stat_activity
        where backend_type = 'client backend' and application_name is distinct from ${sessionName()}`;
      // a server that takes the connection and never answers must not hold a color's stop
      const [row] = await Promise.race([
        asked,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("no answer")), ASK_OTHERS_MS);
        }),
      ]);
      return (row?.others ?? 0) > 0;
    } catch {
      return false; // a cluster no one can reach (or that does not answer) serves no one
    } finally {
      clearTimeout(timer);
      await sql.end({ timeout: 1 }).catch(() => undefined);
    }
  }

  /**
   * The PID in pgdata/postmaster.pid (undefined when there is none), read without following a link:
   * the account owns the directory and could plant a link or a FIFO there (refused by name).
   */
  serverPid(): number | undefined {
    const path = join(this.dir, "pgdata", "postmaster.pid");
    if (!checkOwned(path, "file", [this.account.uid], this.account)) return undefined;
    const pid = Number(readOwnedFile(path, [this.account.uid], this.account).split("\n")[0]);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  }

  /** `pg_ctl status` exits 0 only while a server runs on this data directory. */
  private async isRunning(pgdata: string): Promise<boolean> {
    const status = await runProgram([join(this.bin, "pg_ctl"), "-D", pgdata, "status"], {
      runAs: this.account,
      stdout: "ignore",
      stderr: "ignore",
      deadlineMs: TOOL_DEADLINE_MS.quick,
    });
    return status.code === 0;
  }

  private run(tool: string, args: string[]): Promise<void> {
    return runTool(this.bin, this.account, this.dir, tool, args);
  }
}

/** Root's files here are the superuser password of clusters made before decision 45; new ones are the account's. */
const ownersOf = (account: ClusterAccount) => [...new Set([account.uid, process.getuid?.() ?? 0])];

/** initdb as the account, with a random superuser password that the account writes itself. */
async function initdb(
  bin: string,
  dir: string,
  pgdata: string,
  account: ClusterAccount,
  throwaway: boolean,
): Promise<void> {
  // The directory's parent is root's (checked), so this cannot be a link swapped in meanwhile.
  if (lstatSync(dir).uid !== account.uid) lchownSync(dir, account.uid, account.gid);
  const password = randomBytes(24).toString("base64url");
  await writeAsAccount(account, join(dir, "superuser.password"), `${password}\n`);
  const pwfile = join(dir, ".initdb-pw");
  await writeAsAccount(account, pwfile, `${password}\n`);
  try {
    await runTool(bin, account, dir, "initdb", [
      "-D",
      pgdata,
      "-U",
      EMBEDDED_SUPERUSER,
      `--pwfile=${pwfile}`,
      "--auth=scram-sha-256",
      "-E",
      "UTF8",
      "--locale=C",
      ...(throwaway ? ["--no-sync"] : []),
    ]);
  } finally {
    rmSync(pwfile, { force: true }); // unlink never follows a link
  }
}

/** Socket-only listening, rewritten (as the account) at every open so a moved data directory still works. */
async function writeSettings(
  pgdata: string,
  port: number,
  socketDir: string,
  account: ClusterAccount,
  throwaway: boolean,
  archive?: ArchiveSettings,
): Promise<void> {
  const conf = join(pgdata, "postgresql.conf");
  if (!checkOwned(conf, "file", [account.uid], account))
    throw new DatabaseError("EMBEDDED_POSTGRES", `${conf} is missing`, `${pgdata} is not a whole cluster`);
  checkOwned(join(pgdata, "axe.conf"), "file", [account.uid], account);
  const settings = [
    "# written by axe-appliance at every start: Unix socket only, no TCP",
    "listen_addresses = ''",
    `port = ${port}`,
    `unix_socket_directories = '${socketDir.replaceAll("'", "''")}'`,
    "unix_socket_permissions = 0700",
    "max_connections = 200",
    ...(throwaway ? ["fsync = off", "synchronous_commit = off", "full_page_writes = off"] : []),
    ...(archive
      ? [
          "wal_level = replica",
          "archive_mode = on",
          `archive_command = ${confString(archive.command)}`,
          `archive_timeout = ${archive.timeoutSeconds}`,
        ]
      : []),
    "",
  ].join("\n");
  await runAsAccount(
    account,
    `write the settings in ${pgdata}`,
    'cd "$1" && { grep -qxF "$2" postgresql.conf || printf \'\\n%s\\n\' "$2" >> postgresql.conf; } && cat > axe.conf.tmp-$$ && mv -f axe.conf.tmp-$$ axe.conf',
    [pgdata, INCLUDE_LINE],
    settings,
  );
}

/** A postgresql.conf string literal: backslashes and quotes escaped. */
const confString = (value: string) => `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;

/** Where a running server listens: a cluster started by an older release has its socket elsewhere. */
function runningSocketDir(pgdata: string, account: ClusterAccount): string | undefined {
  try {
    const line = readOwnedFile(join(pgdata, "postmaster.pid"), [account.uid], account).split("\n")[4]?.trim();
    return line?.startsWith("/") ? line : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long a tool may run before it is stopped: pg_ctl waits for the server itself (`-t 60`), so
 * these only end a tool that hangs; initdb writes a whole cluster and gets longer.
 */
const TOOL_DEADLINE_MS = { quick: 30_000, pg_ctl: 120_000, initdb: 600_000 } as const;

/** Runs a Postgres tool as the account; a failure names the tool, its exit and its last words. */
async function runTool(bin: string, account: ClusterAccount, dir: string, tool: string, args: string[]): Promise<void> {
  const deadlineMs = tool === "initdb" ? TOOL_DEADLINE_MS.initdb : TOOL_DEADLINE_MS.pg_ctl;
  const exit = await runProgram([join(bin, tool), ...args], { runAs: account, deadlineMs }).catch((error: unknown) => {
    const why = error instanceof ProgramStartError ? error.reason : (error as Error).message;
    throw new DatabaseError("POSTGRES_SPAWN", `${tool}: ${why}`);
  });
  if (exit.code === 0) return;
  const tail = lastLines(`${exit.stdout}\n${exit.stderr}`, 5, "\n  ");
  throw new DatabaseError(
    "EMBEDDED_POSTGRES",
    `${tool === "pg_ctl" ? `pg_ctl ${args.at(-1)}` : tool} failed (${describeExit(exit, deadlineMs)}):\n  ${tail}`,
    `see ${join(dir, "postgres.log")}`,
  );
}

/** Running as root, the cluster's user must be able to walk down to its directory. */
export function assertReachable(dir: string, user: string): void {
  for (let parent = dirname(dir); parent !== dirname(parent); parent = dirname(parent)) {
    if ((statSync(parent).mode & 0o001) === 0)
      throw new DatabaseError(
        "POSTGRES_RUN_AS",
        `Postgres runs as '${user}' (we are root) and cannot enter ${parent} on the way to ${dir}`,
        `chmod o+x ${parent}, or put data_dir somewhere '${user}' can reach`,
      );
  }
}

/** As root, the account named; otherwise our own (Postgres runs as whoever starts it). */
export async function clusterAccount(name: string): Promise<ClusterAccount> {
  const me = process.getuid?.() ?? 0;
  if (me !== 0) return { name: ourName() ?? String(me), uid: me, gid: process.getgid?.() ?? 0 };
  const account = await lookupAccount(name);
  if (!account)
    throw new DatabaseError(
      "POSTGRES_RUN_AS",
      `running as root, and the user '${name}' that Postgres should run as does not exist`,
      "Postgres refuses to run as root: create that user or set database.embedded_run_as in appliance.yaml",
    );
  return account;
}

/** Our account's name, for messages; a uid without a passwd entry (some containers) has none. */
function ourName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}
