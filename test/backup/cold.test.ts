import { afterEach, describe, expect, test } from "bun:test";
import { readStatus } from "../../src/backup/status.ts";
import { runCli } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { backupFixture, snapshotCount } from "../helpers/restic.ts";
import { seedFrameLikeData } from "./fixtures.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

describe("cold tier", () => {
  test("absent: skipped with its age and a warning; present: created, copied, checked; absent again: quiet", async () => {
    db = await freshDatabase("bk");
    await seedFrameLikeData(db.sql, 200);
    const fx = backupFixture({ database: db.target });
    expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);

    const absent = await runCli(["backup", "run", "--tier", "all", "--config", fx.configDir]);
    expect(absent.code).toBe(0);
    expect(absent.stdout).toContain(`cold: volume ${fx.coldVolume} absent, skipped (never copied)`);
    expect(absent.stderr).toContain("warning: cold SSD: never copied, over the limit of 30 days");
    expect(readStatus(fx.stateDir).tiers.cold?.skipped?.reason).toContain("not mounted");
    const unmounted = await runCli([
      "backup",
      "restore",
      "--snapshot",
      "latest",
      "--to-dir",
      `${fx.stateDir}-restored`,
      "--tier",
      "cold",
      "--config",
      fx.configDir,
    ]);
    expect(unmounted.code).toBe(7);
    expect(unmounted.stderr).toContain(`the cold tier cannot be read here: volume ${fx.coldVolume} not mounted`);
    expect(unmounted.stderr).toContain("plug in the cold SSD");

    fx.setCold(true);
    const present = await runCli(["backup", "run", "--tier", "all", "--config", fx.configDir]);
    expect(present.stderr).not.toContain("error:");
    expect(present.code).toBe(0);
    expect(present.stdout).toContain(`cold: created the repository and copied to ${fx.coldRepo}, checked`);
    expect(snapshotCount(fx.coldRepo, fx.passwordFile("cold"))).toBe(2);
    const cold = readStatus(fx.stateDir).tiers.cold!;
    expect(cold.lastCheck?.ok).toBe(true);
    expect(cold.lastSnapshot?.id).toMatch(/^[0-9a-f]{8}$/);

    fx.setCold(false);
    const again = await runCli(["backup", "run", "--tier", "cold", "--config", fx.configDir]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/cold: volume .* absent, skipped \(last copy \d+\.\dh old\)/);
    expect(again.stderr).toBe("");

    const status = await runCli(["backup", "status", "--config", fx.configDir]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^cold\s+\d{4}-/m);
  }, 180_000);
});
