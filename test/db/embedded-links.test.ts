/**
 * The embedded cluster's directory belongs to the Postgres account, and root opens the cluster
 * (serve, backup, migrate). Each test plants, as that account, a link root used to follow (a
 * write, chmod or chown of a root-owned file or directory: root code execution or data loss), and
 * checks that open() refuses by name and that the target keeps its content, owner and mode.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../../src/db/connect.ts";
import { EmbeddedPostgres } from "../../src/db/embedded.ts";
import { findPostgresTools, SERVER_TOOLS } from "../../src/db/postgres-tools.ts";
import { DatabaseError } from "../../src/lib/errors.ts";
import { asPostgres, asRoot, postgresAccount } from "../helpers/accounts.ts";
import { tempDir } from "../helpers/tmp.ts";

const account = postgresAccount;

/** A root-owned file, 0644, that the postgres account can read but never write. */
function rootFile(dir: string, name: string): { path: string; check(): void } {
  const path = join(dir, name);
  writeFileSync(path, `root's ${name}\n`, { mode: 0o644 });
  return {
    path,
    check() {
      const stat = lstatSync(path);
      expect({ uid: stat.uid, mode: (stat.mode & 0o7777).toString(8), content: readFileSync(path, "utf8") }).toEqual({
        uid: 0,
        mode: "644",
        content: `root's ${name}\n`,
      });
    },
  };
}

async function refusal(dir: string, port = 5452): Promise<DatabaseError> {
  const error = await EmbeddedPostgres.open({ dir, port, throwaway: true }).then(
    async (pg) => {
      await pg.stop();
      throw new Error("open() accepted the planted link");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DatabaseError);
  return error as DatabaseError;
}

describe.skipIf(!asRoot || !account)("embedded Postgres as root: links planted by the postgres account", () => {
  let dir: string;
  let pgdata: string;
  let victims: string;

  beforeAll(async () => {
    dir = join(tempDir("axe-emb-links"), "postgres"); // like {data_dir}/postgres: the parent is root's
    pgdata = join(dir, "pgdata");
    victims = tempDir("axe-emb-victim");
    const pg = await EmbeddedPostgres.open({ dir, port: 5452, throwaway: true });
    await pg.stop();
  }, 120_000);

  afterAll(async () => {
    await EmbeddedPostgres.open({ dir, port: 5452, throwaway: true })
      .then((pg) => pg.stop({ force: true }))
      .catch(() => undefined);
  });

  test("the socket directory lives outside the cluster directory, owned by postgres, 0700, in a root-owned parent", async () => {
    const pg = await EmbeddedPostgres.open({ dir, port: 5452, throwaway: true });
    try {
      expect(pg.socketDir.startsWith(`${dir}/`)).toBe(false);
      const socket = statSync(pg.socketDir);
      expect({ uid: socket.uid, mode: (socket.mode & 0o777).toString(8) }).toEqual({ uid: account!.uid, mode: "700" });
      expect(statSync(join(pg.socketDir, "..")).uid).toBe(0);
    } finally {
      await pg.stop();
    }
  }, 60_000);

  test("pgdata/axe.conf as a link to a root-owned file: refused by name, the file untouched", async () => {
    const victim = rootFile(victims, "axe-conf-target");
    asPostgres('mv "$1/axe.conf" "$1/axe.conf.saved" && ln -s "$2" "$1/axe.conf"', pgdata, victim.path);
    try {
      const error = await refusal(dir);
      expect(error.message).toContain(`${join(pgdata, "axe.conf")} is a symbolic link`);
      expect(error.code).toBe("EMBEDDED_UNSAFE_PATH");
      victim.check();
    } finally {
      asPostgres('rm -f "$1/axe.conf" && mv "$1/axe.conf.saved" "$1/axe.conf"', pgdata);
    }
  }, 60_000);

  test("pgdata/postgresql.conf as a link to a root-owned file: refused by name, the file untouched", async () => {
    const victim = rootFile(victims, "postgresql-conf-target");
    asPostgres('mv "$1/postgresql.conf" "$1/pc.saved" && ln -s "$2" "$1/postgresql.conf"', pgdata, victim.path);
    try {
      const error = await refusal(dir);
      expect(error.message).toContain(join(pgdata, "postgresql.conf"));
      victim.check();
    } finally {
      asPostgres('rm -f "$1/postgresql.conf" && mv "$1/pc.saved" "$1/postgresql.conf"', pgdata);
    }
  }, 60_000);

  test("pgdata as a link to a root-owned directory: refused by name, nothing written there", async () => {
    const target = join(victims, "fake-pgdata");
    mkdirSync(target, { mode: 0o755 });
    const version = rootFile(target, "PG_VERSION");
    const conf = rootFile(target, "postgresql.conf");
    asPostgres('mv "$1/pgdata" "$1/pgdata.saved" && ln -s "$2" "$1/pgdata"', dir, target);
    try {
      const error = await refusal(dir);
      expect(error.message).toContain(pgdata);
      version.check();
      conf.check();
      expect(existsSync(join(target, "axe.conf"))).toBe(false);
      expect((statSync(target).mode & 0o777).toString(8)).toBe("755");
    } finally {
      asPostgres('rm -f "$1/pgdata" && mv "$1/pgdata.saved" "$1/pgdata"', dir);
    }
  }, 60_000);

  test("postgres.log as a link into a root-owned directory: refused by name, nothing created or chowned", async () => {
    const existing = rootFile(victims, "log-target");
    const missing = join(victims, "created-by-root");
    for (const target of [existing.path, missing]) {
      asPostgres('rm -f "$1/postgres.log" && ln -s "$2" "$1/postgres.log"', dir, target);
      try {
        const error = await refusal(dir);
        expect(error.message).toContain(join(dir, "postgres.log"));
        existing.check();
        expect(existsSync(missing)).toBe(false);
      } finally {
        asPostgres('rm -f "$1/postgres.log"', dir);
      }
    }
  }, 60_000);

  test("{cluster}/run as a link to a root-owned directory is never followed (the socket is not there)", async () => {
    const target = join(victims, "run-target");
    mkdirSync(target, { mode: 0o755 });
    asPostgres('rm -rf "$1/run" && ln -s "$2" "$1/run"', dir, target);
    try {
      const pg = await EmbeddedPostgres.open({ dir, port: 5452, throwaway: true });
      await pg.stop();
      const stat = statSync(target);
      expect({ uid: stat.uid, mode: (stat.mode & 0o777).toString(8) }).toEqual({ uid: 0, mode: "755" });
    } finally {
      asPostgres('rm -f "$1/run"', dir);
    }
  }, 60_000);

  test("superuser.password as a link to a root secret: refused by name, the secret never read into a connection", async () => {
    const secret = rootFile(victims, "master.key");
    asPostgres('mv "$1/superuser.password" "$1/pw.saved" && ln -s "$2" "$1/superuser.password"', dir, secret.path);
    try {
      const error = await refusal(dir);
      expect(error.message).toContain(join(dir, "superuser.password"));
      secret.check();
    } finally {
      asPostgres('rm -f "$1/superuser.password" && mv "$1/pw.saved" "$1/superuser.password"', dir);
    }
  }, 60_000);
});

describe.skipIf(!asRoot || !account)("embedded Postgres as root: the /tmp socket fallback", () => {
  /** A cluster directory long enough that its socket path does not fit beside it. */
  function longDir(): string {
    const dir = join(tempDir("axe-emb-long"), "x".repeat(60), "postgres");
    mkdirSync(join(dir, ".."), { mode: 0o755 });
    return dir;
  }
  const fallback = (dir: string) =>
    join("/tmp", `axe-pg-${createHash("sha256").update(dir).digest("hex").slice(0, 12)}`);

  test("a private directory made by root, the socket directory inside it owned by postgres", async () => {
    const dir = longDir();
    const pg = await EmbeddedPostgres.open({ dir, port: 5453, throwaway: true });
    try {
      expect(pg.socketDir.startsWith(`${fallback(dir)}/`)).toBe(true);
      const parent = lstatSync(fallback(dir));
      expect({ dir: parent.isDirectory(), uid: parent.uid, writable: (parent.mode & 0o022) !== 0 }).toEqual({
        dir: true,
        uid: 0,
        writable: false,
      });
      expect(statSync(pg.socketDir).uid).toBe(account!.uid);
    } finally {
      await pg.stop();
      spawnSync("rm", ["-rf", fallback(dir)]);
    }
  }, 60_000);

  test("pre-created by another account (a link to a root-owned directory, or a directory of its own): refused by name", async () => {
    for (const plant of ['ln -s "$2" "$1"', 'mkdir -m 755 "$1"']) {
      const dir = longDir();
      const target = tempDir("axe-emb-victim");
      asPostgres(plant, fallback(dir), target);
      try {
        const error = await refusal(dir, 5453);
        expect(error.message).toContain(fallback(dir));
        const stat = statSync(target);
        expect({ uid: stat.uid, mode: (stat.mode & 0o777).toString(8) }).toEqual({ uid: 0, mode: "755" });
      } finally {
        spawnSync("rm", ["-rf", fallback(dir)]);
      }
    }
  }, 60_000);
});

describe.skipIf(!asRoot || !account)("embedded Postgres as root: upgrading a running cluster", () => {
  test("a server started by an older release (socket in {cluster}/run) is reached where it listens", async () => {
    const dir = join(tempDir("axe-emb-old"), "postgres");
    const first = await EmbeddedPostgres.open({ dir, port: 5454, throwaway: true });
    await first.stop();
    // What releases before decision 45 left behind: the socket directory inside the cluster directory.
    const legacy = join(dir, "run");
    const pgdata = join(dir, "pgdata");
    asPostgres(
      'mkdir -m 700 "$1" && sed -i "s|^unix_socket_directories = .*|unix_socket_directories = \'$1\'|" "$2/axe.conf"',
      legacy,
      pgdata,
    );
    const pgCtl = join(findPostgresTools(SERVER_TOOLS), "pg_ctl");
    asPostgres('"$1" -D "$2" -l "$3" -w start >/dev/null', pgCtl, pgdata, join(dir, "postgres.log"));
    try {
      const pg = await EmbeddedPostgres.open({ dir, port: 5454, throwaway: true });
      expect(pg.startedHere).toBe(false);
      expect(pg.socketDir).toBe(legacy);
      const sql = connect(pg.target(), { max: 1 });
      expect((await sql`select 1 as one`)[0]!.one).toBe(1);
      await sql.end();
      // Its next start moves the socket out of the cluster directory.
      await pg.stop({ force: true });
      const again = await EmbeddedPostgres.open({ dir, port: 5454, throwaway: true });
      expect(again.socketDir).toBe(`${dir}-socket`);
      await again.stop();
    } finally {
      asPostgres('"$1" -D "$2" -m immediate stop >/dev/null 2>&1 || true', pgCtl, pgdata);
    }
  }, 60_000);
});
