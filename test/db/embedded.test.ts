import { describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../../src/db/connect.ts";
import { EmbeddedPostgres } from "../../src/db/embedded.ts";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";

const POOL = join(import.meta.dir, "../../src/db/pool.ts");

describe("embedded Postgres", () => {
  test("created once with a 0600 password, socket only, reused while running, stopped by its starter", async () => {
    const dir = join(tempDir("axe-emb"), "postgres"); // its socket directory ({dir}-socket) lands inside the temp dir too
    const first = await EmbeddedPostgres.open({ dir, port: 5440 });
    try {
      expect(first.startedHere).toBe(true);
      expect(statSync(join(dir, "superuser.password")).mode & 0o777).toBe(0o600);
      expect(statSync(first.socketDir).mode & 0o777).toBe(0o700);
      const sql = connect(first.target(), { max: 1 });
      const [row] =
        await sql`select current_setting('listen_addresses') as listen, current_setting('password_encryption') as enc`;
      await sql.end();
      expect(row!.listen).toBe("");
      expect(row!.enc).toBe("scram-sha-256");

      const second = await EmbeddedPostgres.open({ dir, port: 5440 });
      expect(second.startedHere).toBe(false);
      await second.stop(); // not its to stop
      const again = connect(first.target(), { max: 1 });
      expect((await again`select 1 as one`)[0]!.one).toBe(1);
      await again.end();
    } finally {
      await first.stop();
    }
    const reopened = await EmbeddedPostgres.open({ dir, port: 5440 });
    expect(reopened.startedHere).toBe(true);
    await reopened.stop();
  }, 180_000); // initdb and a cluster start or two: 5-10 s alone, 25 s at load 16

  test("its starter leaves it running while another process uses it (the other color, a backup), and stops it after", async () => {
    // blue started the cluster at boot, green uses it; a deploy restarts blue: the live green keeps its database
    const dir = join(tempDir("axe-emb"), "postgres");
    const blue = await EmbeddedPostgres.open({ dir, port: 5442 });
    expect(blue.startedHere).toBe(true);
    const target = (await EmbeddedPostgres.open({ dir, port: 5442 })).target();
    const holdSession = `const { connect } = await import(${JSON.stringify(POOL)});
      await connect(JSON.parse(process.env.TARGET))\`select 1\`;
      console.log("connected");
      setInterval(() => {}, 60_000);`;
    const green = Bun.spawn([process.execPath, "-e", holdSession], {
      env: { ...process.env, TARGET: JSON.stringify(target) },
      stdout: "pipe",
    });
    try {
      const reader = green.stdout.getReader();
      let said = "";
      while (!said.includes("connected")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`green did not connect: ${said}`);
        said += new TextDecoder().decode(value);
      }
      expect(await blue.stop()).toBe("in use");
      const sql = connect(target, { max: 1 });
      expect((await sql`select 2 as two`)[0]!.two).toBe(2); // still up
      await sql.end();
    } finally {
      green.kill("SIGKILL");
      await green.exited;
    }
    // green's session ends with its process (its backend may linger for a moment)
    expect(await waitFor("the cluster to stop once green is gone", async () => (await blue.stop()) === "stopped")).toBe(
      true,
    );
    const reopened = await EmbeddedPostgres.open({ dir, port: 5442 });
    expect(reopened.startedHere).toBe(true);
    expect(await reopened.stop({ force: true })).toBe("stopped");
  }, 180_000); // initdb and a cluster start or two: 5-10 s alone, 25 s at load 16

  test("`db restart` restarts the running embedded cluster (archive_mode is read only at start), `db stop` stops it; a database.url is refused", async () => {
    // since decision 78 no color's restart restarts the cluster, so the operator needs a way to
    const data = tempDir("axe-data");
    const config = makeConfigDir({ appliance: { data_dir: data } });
    const pg = await EmbeddedPostgres.open({ dir: join(data, "postgres") });
    try {
      const before = pg.serverPid()!;
      const restarted = await runCli(["db", "restart", "--config", config]);
      expect(restarted.stderr).toBe("");
      expect(restarted.code).toBe(0);
      const after = pg.serverPid()!;
      expect(after).not.toBe(before);
      expect(restarted.stdout).toContain(`restarted the embedded Postgres (pid ${before} -> ${after})`);
      const sql = connect(pg.target(), { max: 1 });
      expect((await sql`select 1 as one`)[0]!.one).toBe(1);
      await sql.end();
    } finally {
      await pg.stop({ force: true });
    }
    const started = await runCli(["db", "restart", "--config", config]); // not running: started, and left so
    expect(started.code).toBe(0);
    expect(started.stdout).toContain("started the embedded Postgres");
    const running = await EmbeddedPostgres.open({ dir: join(data, "postgres") });
    expect(running.startedHere).toBe(false);
    const pid = running.serverPid();
    const held = connect(running.target(), { max: 1 }); // someone still connected: `db stop` stops it all the same
    await held`select 1`;
    const stopped = await runCli(["db", "stop", "--config", config]);
    await held.end({ timeout: 0 }).catch(() => undefined);
    expect(stopped.stderr).toBe("");
    expect(stopped.stdout).toBe(`stopped the embedded Postgres (pid ${pid})\n`);
    expect(running.serverPid()).toBeUndefined();
    const again = await runCli(["db", "stop", "--config", config]); // and never starts one to stop it
    expect(again.stdout).toBe("the embedded Postgres is not running\n");
    expect(running.serverPid()).toBeUndefined();
    const none = await runCli([
      "db",
      "stop",
      "--config",
      makeConfigDir({ appliance: { data_dir: tempDir("axe-data") } }),
    ]);
    expect(none.code).toBe(4);
    expect(none.stderr).toContain("there is no embedded cluster");

    const external = makeConfigDir({ appliance: { database: { url: "postgres://frame@127.0.0.1:1/frame" } } });
    const refused = await runCli(["db", "restart", "--config", external]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain("database.url");
  }, 180_000); // initdb and a cluster start or two: 5-10 s alone, 25 s at load 16

  test("a wrong password is refused (the cluster does not trust local connections)", async () => {
    const dir = join(tempDir("axe-emb"), "postgres");
    const pg = await EmbeddedPostgres.open({ dir, port: 5441 });
    try {
      const sql = connect({ ...pg.target(), password: "wrong" }, { max: 1 });
      await expect(sql`select 1`).rejects.toThrow(/password authentication failed/);
      await sql.end();
    } finally {
      await pg.stop();
    }
  }, 180_000); // initdb and a cluster start or two: 5-10 s alone, 25 s at load 16

  test("`db migrate` on the embedded default works twice in a row and stops the cluster it started", async () => {
    const config = makeConfigDir({ appliance: { data_dir: tempDir("axe-data") } });
    const first = await runCli(["db", "migrate", "--config", config]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^applied migration.* now at version \d+/);
    const second = await runCli(["db", "migrate", "--config", config]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^up to date at version \d+/);
    const status = await runCli(["db", "status", "--json", "--config", config]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).pending).toEqual([]);
  }, 180_000); // initdb and a cluster start or two: 5-10 s alone, 25 s at load 16

  test("processes opening the running cluster at once (blue and green starting together) all succeed", async () => {
    const data = tempDir("axe-data");
    const config = makeConfigDir({ appliance: { data_dir: data } });
    const pg = await EmbeddedPostgres.open({ dir: join(data, "postgres"), port: 5432 });
    try {
      const runs = await Promise.all(
        Array.from({ length: 6 }, () => runCli(["db", "status", "--json", "--config", config])),
      );
      expect(runs.map((r) => (r.code === 0 ? "ok" : r.stderr))).toEqual(Array(6).fill("ok"));
    } finally {
      await pg.stop();
    }
  }, 180_000); // initdb and a cluster start or two: 5-10 s alone, 25 s at load 16
});
