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
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseError } from "../lib/errors.ts";
import { writeSecretFile } from "../lib/secret-file.ts";
import type { DatabaseTarget } from "./connect.ts";
import { findPostgresTools, SERVER_TOOLS } from "./postgres-tools.ts";

export interface EmbeddedOptions {
  /** The cluster's home: pgdata/, run/, the superuser password and the server log live here. */
  dir: string;
  /** OS user Postgres runs as when we are root (Postgres refuses to run as root). */
  runAs?: string;
  /** Port number in the socket's name; no TCP port is opened. */
  port?: number;
  /** Throwaway clusters (tests): skip fsync at initdb and at run time. Never for real data. */
  throwaway?: boolean;
}

const SUPERUSER = "axe";
const SOCKET_PATH_MAX = 100; // macOS allows 104 bytes for a socket path, Linux 108

export class EmbeddedPostgres {
  private constructor(
    readonly dir: string,
    readonly socketDir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly owner: { uid: number; gid: number } | undefined,
    /** True when this process started the server (and so stops it). */
    readonly startedHere: boolean,
    private readonly throwaway = false,
  ) {}

  static async open(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
    const bin = findPostgresTools(SERVER_TOOLS);
    const port = options.port ?? 5432;
    const owner = process.getuid?.() === 0 ? lookupUser(options.runAs ?? "postgres") : undefined;
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    if (owner) assertReachable(options.dir, options.runAs ?? "postgres");
    const socketDir = socketDirFor(options.dir, port);
    const pgdata = join(options.dir, "pgdata");
    const throwaway = options.throwaway ?? false;
    const cluster = new EmbeddedPostgres(options.dir, socketDir, port, bin, owner, false, throwaway);
    if (!existsSync(join(pgdata, "PG_VERSION"))) await cluster.initdb(pgdata);
    cluster.writeSettings(pgdata);
    if (cluster.isRunning(pgdata)) return cluster;
    await cluster.start(pgdata);
    return new EmbeddedPostgres(options.dir, socketDir, port, bin, owner, true, throwaway);
  }

  /** Connection target for a database in this cluster, as the superuser, over the socket. */
  target(database = "postgres"): DatabaseTarget {
    return {
      host: this.socketDir,
      port: this.port,
      user: SUPERUSER,
      password: readFileSync(join(this.dir, "superuser.password"), "utf8").trim(),
      database,
      passfile: join(this.dir, "pgpass"),
    };
  }

  /** Stops the server if this process started it (fast shutdown: sessions end, data is safe). */
  async stop(options: { force?: boolean } = {}): Promise<void> {
    if (!this.startedHere && !options.force) return;
    const pgdata = join(this.dir, "pgdata");
    if (!this.isRunning(pgdata)) return;
    await this.run("pg_ctl", ["-D", pgdata, "-m", "fast", "-w", "-t", "60", "stop"]);
  }

  /** Synchronous stop for process exit handlers. */
  stopSync(): void {
    if (!this.startedHere) return;
    spawnSync(join(this.bin, "pg_ctl"), ["-D", join(this.dir, "pgdata"), "-m", "immediate", "-w", "stop"], {
      stdio: "ignore",
      ...(this.owner ?? {}),
    });
  }

  private async initdb(pgdata: string): Promise<void> {
    const password = randomBytes(24).toString("base64url");
    writeSecretFile(join(this.dir, "superuser.password"), `${password}\n`);
    writeSecretFile(join(this.dir, "pgpass"), `*:*:*:${SUPERUSER}:${password}\n`);
    const pwfile = join(this.dir, ".initdb-pw");
    writeSecretFile(pwfile, `${password}\n`);
    if (this.owner) {
      chownSync(this.dir, this.owner.uid, this.owner.gid);
      chownSync(pwfile, this.owner.uid, this.owner.gid);
    }
    try {
      await this.run("initdb", [
        "-D",
        pgdata,
        "-U",
        SUPERUSER,
        `--pwfile=${pwfile}`,
        "--auth=scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C",
        ...(this.throwaway ? ["--no-sync"] : []),
      ]);
    } finally {
      rmSync(pwfile, { force: true });
    }
  }

  /** Socket-only listening, rewritten at every open so a moved data directory still works. */
  private writeSettings(pgdata: string): void {
    mkdirSync(this.socketDir, { recursive: true, mode: 0o700 });
    chmodSync(this.socketDir, 0o700);
    if (this.owner) chownSync(this.socketDir, this.owner.uid, this.owner.gid);
    const conf = join(pgdata, "postgresql.conf");
    const text = readFileSync(conf, "utf8");
    if (!text.includes("include_if_exists = 'axe.conf'"))
      writeFileSync(conf, `${text}\ninclude_if_exists = 'axe.conf'\n`);
    const settings = [
      "# written by axe-appliance at every start: Unix socket only, no TCP",
      "listen_addresses = ''",
      `port = ${this.port}`,
      `unix_socket_directories = '${this.socketDir.replaceAll("'", "''")}'`,
      "unix_socket_permissions = 0700",
      "max_connections = 200",
      ...(this.throwaway ? ["fsync = off", "synchronous_commit = off", "full_page_writes = off"] : []),
      "",
    ].join("\n");
    writeFileSync(join(pgdata, "axe.conf"), settings, { mode: 0o600 });
    if (this.owner) chownSync(join(pgdata, "axe.conf"), this.owner.uid, this.owner.gid);
  }

  private isRunning(pgdata: string): boolean {
    const status = spawnSync(join(this.bin, "pg_ctl"), ["-D", pgdata, "status"], {
      stdio: "ignore",
      ...(this.owner ?? {}),
    });
    return status.status === 0;
  }

  private async start(pgdata: string): Promise<void> {
    const logFile = join(this.dir, "postgres.log");
    if (this.owner && !existsSync(logFile)) {
      writeFileSync(logFile, "", { mode: 0o600 });
      chownSync(logFile, this.owner.uid, this.owner.gid);
    }
    await this.run("pg_ctl", ["-D", pgdata, "-l", logFile, "-w", "-t", "60", "start"]);
  }

  private run(tool: string, args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(join(this.bin, tool), args, { stdio: ["ignore", "pipe", "pipe"], ...(this.owner ?? {}) });
      let output = "";
      child.stdout.on("data", (chunk) => (output += chunk));
      child.stderr.on("data", (chunk) => (output += chunk));
      child.on("error", (error) => reject(new DatabaseError("POSTGRES_SPAWN", `${tool}: ${error.message}`)));
      child.on("close", (code) => {
        if (code === 0) return resolve();
        const tail = output.trim().split("\n").slice(-5).join("\n  ");
        reject(
          new DatabaseError(
            "EMBEDDED_POSTGRES",
            `${tool === "pg_ctl" ? `pg_ctl ${args.at(-1)}` : tool} failed (exit ${code}):\n  ${tail}`,
            `see ${join(this.dir, "postgres.log")}`,
          ),
        );
      });
    });
  }
}

/** A short socket directory: beside the cluster when the path fits, else under /tmp. */
function socketDirFor(dir: string, port: number): string {
  const beside = join(dir, "run");
  if (join(beside, `.s.PGSQL.${port}`).length <= SOCKET_PATH_MAX) return beside;
  return join("/tmp", `axe-pg-${createHash("sha256").update(dir).digest("hex").slice(0, 12)}`);
}

/** Running as root, the cluster's user must be able to walk down to its directory. */
function assertReachable(dir: string, user: string): void {
  for (let parent = dirname(dir); parent !== dirname(parent); parent = dirname(parent)) {
    if ((statSync(parent).mode & 0o001) === 0)
      throw new DatabaseError(
        "POSTGRES_RUN_AS",
        `Postgres runs as '${user}' (we are root) and cannot enter ${parent} on the way to ${dir}`,
        `chmod o+x ${parent}, or put data_dir somewhere '${user}' can reach`,
      );
  }
}

function lookupUser(name: string): { uid: number; gid: number } {
  const uid = spawnSync("id", ["-u", name], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", name], { encoding: "utf8" });
  if (uid.status !== 0 || gid.status !== 0)
    throw new DatabaseError(
      "POSTGRES_RUN_AS",
      `running as root, and the user '${name}' that Postgres should run as does not exist`,
      "Postgres refuses to run as root: create that user or set database.embedded_run_as in appliance.yaml",
    );
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}
