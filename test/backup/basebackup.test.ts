/**
 * With WAL archiving on, the daily run also takes a physical base backup (pg_basebackup -Ft -X none
 * streamed into restic, no clear-text file) beside the logical dump; a failed pg_basebackup is
 * never a snapshot.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DUMP_TOOLS, findPostgresTools } from "../../src/db/postgres-tools.ts";
import { runCli } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { backupFixture, resticJson, resticMatrix, useRestic } from "../helpers/restic.ts";
import { tempDir } from "../helpers/tmp.ts";
import { seedFrameLikeData } from "./fixtures.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

/** The real tools, with a pg_basebackup that sends its first 4 KiB and then fails as a dropped connection would. */
function failingBaseBackupDir(): string {
  const real = findPostgresTools(DUMP_TOOLS);
  const dir = tempDir("axe-shim");
  writeFileSync(
    join(dir, "pg_basebackup"),
    `#!/bin/sh\n"${join(real, "pg_basebackup")}" "$@" | head -c 4096\necho "pg_basebackup: error: could not read COPY data: server closed the connection unexpectedly" >&2\nexit 1\n`,
  );
  chmodSync(join(dir, "pg_basebackup"), 0o755);
  for (const tool of ["pg_dump", "pg_restore", "psql"]) symlinkSync(join(real, tool), join(dir, tool));
  return dir;
}

for (const restic of resticMatrix())
  describe(`[restic ${restic.version}] base backups`, () => {
    useRestic(restic);

    test("a base backup snapshot (a tar of the cluster) beside the dump; a failed pg_basebackup is no snapshot", async () => {
      db = await freshDatabase("bk");
      await seedFrameLikeData(db.sql, 200);
      const fx = backupFixture({ database: db.target, backup: { wal: { enabled: true } } });
      expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);
      const run = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
      expect(run.stderr).not.toContain("error:");
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/base backup [0-9a-f]{8}/);
      const bases = resticJson(fx.localRepo, fx.passwordFile("local"), ["snapshots", "--tag", "base"]) as Array<{
        id: string;
      }>;
      expect(bases.length).toBe(1);
      // It is a real base backup: the tar holds the control file and the backup label.
      const tar = Bun.spawnSync(
        ["sh", "-c", '"$1" --no-cache dump "$2" /base.tar | tar -t', "sh", restic.bin, bases[0]!.id],
        {
          env: { ...process.env, RESTIC_REPOSITORY: fx.localRepo, RESTIC_PASSWORD_FILE: fx.passwordFile("local") },
          stdout: "pipe",
          stderr: "pipe",
        },
      );
      const names = tar.stdout.toString().split("\n");
      expect(names).toContain("global/pg_control");
      expect(names).toContain("backup_label");

      const failed = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir], {
        env: { AXE_PG_BIN: failingBaseBackupDir() },
      });
      expect(failed.code).toBe(7);
      expect(failed.stderr).toContain("pg_basebackup failed (exit 1)");
      expect(failed.stderr).toContain("server closed the connection unexpectedly");
      expect(failed.stderr).toContain("no base backup snapshot was saved");
      expect(
        (resticJson(fx.localRepo, fx.passwordFile("local"), ["snapshots", "--tag", "base"]) as unknown[]).length,
      ).toBe(1);
    }, 180_000);
  });
