/**
 * A real full disk: the cold volume is a 1 MiB tmpfs (root only; skipped elsewhere), the dump
 * does not fit. The cold tier fails with "no space left on device", local still succeeds, exit 8,
 * nothing is deleted.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { readStatus } from "../../src/backup/status.ts";
import { runCli } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { backupFixture, snapshotCount } from "../helpers/restic.ts";
import { tempDir } from "../helpers/tmp.ts";

const isRoot = process.getuid?.() === 0;
let db: TestDatabase | undefined;
let mounted: string | undefined;
afterEach(async () => {
  if (mounted) spawnSync("umount", [mounted]);
  mounted = undefined;
  await db?.drop();
  db = undefined;
});

describe("disk full", () => {
  test.skipIf(!isRoot)(
    "the cold SSD runs out of space: cold fails with the reason, local succeeds, exit 8",
    async () => {
      const volume = tempDir("axe-full");
      const mount = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", volume], { encoding: "utf8" });
      expect(mount.stderr).toBe("");
      mounted = volume;
      writeFileSync(join(volume, ".axe-cold"), "");
      db = await freshDatabase("bk");
      await db.sql`create table entity_axe_blobs (id int primary key, body text)`;
      await db.sql`insert into entity_axe_blobs select i, md5(random()::text) || md5(random()::text) from generate_series(1, 60000) i`;
      const fx = backupFixture({ database: db.target, backup: { cold: { volume } } });
      expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);

      const run = await runCli(["backup", "run", "--tier", "all", "--config", fx.configDir]);
      expect(run.code).toBe(8);
      expect(run.stdout).toMatch(/local: database snapshot [0-9a-f]{8}/);
      expect(run.stderr).toContain("cold tier");
      expect(run.stderr).toContain("no space left on device");
      expect(run.stderr).toContain("nothing was deleted");
      expect(readStatus(fx.stateDir).tiers.cold?.lastAttempt).toMatchObject({ ok: false, code: "DISK_FULL" });
      expect(snapshotCount(fx.localRepo, fx.passwordFile("local"))).toBe(2);
    },
    120_000,
  );
});
