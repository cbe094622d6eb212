/**
 * With no database.url the appliance runs its own embedded cluster under data_dir; backups must
 * work there too: pg_dump reaches it over its Unix socket with the cluster's password (in a pgpass
 * file of the backup's own), and the drill makes its scratch database in the same cluster.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { connect, openDatabase } from "../../src/db/connect.ts";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { snapshotCount } from "../helpers/restic.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("backup on the embedded cluster", () => {
  test("run, verify with a drill, and restore into a second database of the same cluster", async () => {
    const config = makeConfigDir({
      appliance: { backup: { ring: { enabled: false }, cold: { volume: tempDir("axe-cold") }, check_subset: "100%" } },
    });
    mkdirSync(join(config, "data"), { mode: 0o755 }); // as root, the cluster runs as postgres and must reach into it
    const db = await openDatabase(loadConfig({ dir: config }));
    try {
      const sql = connect(db.target, { max: 1 });
      await sql`create schema entity_axe`;
      await sql`create table entity_axe.notes (id int primary key, body text)`;
      await sql`insert into entity_axe.notes select i, 'note ' || i from generate_series(1, 500) i`;
      await sql`create database frame_restored`;
      await sql.end();

      expect((await runCli(["backup", "init", "--config", config])).code).toBe(0);
      const run = await runCli(["backup", "run", "--tier", "local", "--config", config]);
      expect(run.stderr).not.toContain("error:");
      expect(run.code).toBe(0);
      expect(
        snapshotCount(join(config, "data", "backup", "restic"), join(config, "secrets", "restic-local.password")),
      ).toBe(2);

      const verify = await runCli(["backup", "verify", "--config", config]);
      expect(verify.stderr).not.toContain("error:");
      expect(verify.code).toBe(0);
      expect(verify.stdout).toMatch(
        /local: .* restored and proven: row counts and checksums match in 1 table; files snapshot [0-9a-f]{8} restored and proven/m,
      );

      const url = `postgres://${db.target.user}@${encodeURIComponent(db.target.host)}:${db.target.port}/frame_restored`;
      const restore = await runCli([
        "backup",
        "restore",
        "--snapshot",
        "latest",
        "--to-database",
        url,
        "--config",
        config,
      ]);
      expect(restore.stderr).toBe("");
      expect(restore.code).toBe(0);
      const restored = connect({ ...db.target, database: "frame_restored" }, { max: 1 });
      const [row] = await restored`select count(*)::int as n, max(body) as last from entity_axe.notes`;
      await restored.end();
      expect(row).toEqual({ n: 500, last: "note 99" });
    } finally {
      await db.embedded?.stop({ force: true });
    }
  }, 180_000);
});
