import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readStatus } from "../../src/backup/status.ts";
import { DUMP_TOOLS, findPostgresTools } from "../../src/db/postgres-tools.ts";
import { runCli } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { backupFixture, lockIds, resticMatrix, snapshotCount, useRestic } from "../helpers/restic.ts";
import { tempDir } from "../helpers/tmp.ts";
import { seedFrameLikeData } from "./fixtures.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

/**
 * A real failure: this pg_dump runs the real pg_dump, passes the first 4 KiB of its real output
 * through, then reports an error and exits 1, as pg_dump does when its connection drops.
 */
function failingPgDumpDir(how: "exit" | "sigkill" = "exit"): string {
  const real = findPostgresTools(DUMP_TOOLS);
  const dir = tempDir("axe-shim");
  writeFileSync(
    join(dir, "pg_dump"),
    how === "exit"
      ? `#!/bin/sh\n"${join(real, "pg_dump")}" "$@" | head -c 4096\necho "pg_dump: error: Dumping the contents of table \\"records\\" failed: server closed the connection unexpectedly" >&2\nexit 1\n`
      : `#!/bin/sh\n"${join(real, "pg_dump")}" "$@" | head -c 4096\necho "pg_dump: dumping contents of table records" >&2\nkill -KILL $$\n`,
  );
  chmodSync(join(dir, "pg_dump"), 0o755);
  symlinkSync(join(real, "pg_restore"), join(dir, "pg_restore"));
  symlinkSync(join(real, "psql"), join(dir, "psql"));
  return dir;
}

for (const restic of resticMatrix())
  describe(`[restic ${restic.version}] pg_dump failing mid-stream`, () => {
    useRestic(restic);

    test("no new snapshot, exit 7, the message says pg_dump failed and why, the repository is not left locked", async () => {
      db = await freshDatabase("bk");
      await seedFrameLikeData(db.sql, 3000);
      const fx = backupFixture({ database: db.target });
      expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);
      const good = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
      expect(good.code).toBe(0);
      const before = snapshotCount(fx.localRepo, fx.passwordFile("local"));
      expect(before).toBe(2);

      const failed = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir], {
        env: { AXE_PG_BIN: failingPgDumpDir() },
      });
      expect(failed.code).toBe(7);
      expect(failed.stderr).toContain("pg_dump failed (exit 1)");
      expect(failed.stderr).toContain("server closed the connection unexpectedly");
      expect(failed.stderr).toContain("no snapshot was saved");
      expect(failed.stderr).not.toContain("message_type"); // restic's JSON is read, not printed
      expect(failed.stderr).not.toContain("backup verify"); // a failed dump is not a repository problem
      expect(snapshotCount(fx.localRepo, fx.passwordFile("local"))).toBe(before);
      expect(lockIds(fx.localRepo, fx.passwordFile("local"))).toEqual([]);
      const status = readStatus(fx.stateDir).tiers.local!;
      expect(status.lastAttempt?.ok).toBe(false);
      expect(status.lastAttempt?.code).toBe("DUMP_FAILED");
      expect((await runCli(["backup", "status", "--config", fx.configDir])).code).toBe(7);
    }, 120_000);

    test("pg_dump killed by a signal: the message names pg_dump and the signal, not restic", async () => {
      db = await freshDatabase("bk");
      await seedFrameLikeData(db.sql, 3000);
      const fx = backupFixture({ database: db.target });
      expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);
      const killed = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir], {
        env: { AXE_PG_BIN: failingPgDumpDir("sigkill") },
      });
      expect(killed.code).toBe(7);
      expect(killed.stderr).toContain("pg_dump was killed by SIGKILL");
      expect(killed.stderr).toContain("dumping contents of table records"); // its last words
      expect(killed.stderr).toContain("no snapshot was saved");
      expect(killed.stderr).not.toContain("restic failed");
      expect(snapshotCount(fx.localRepo, fx.passwordFile("local"))).toBe(0);
      expect(readStatus(fx.stateDir).tiers.local!.lastAttempt?.code).toBe("DUMP_FAILED");
    }, 120_000);
  });
