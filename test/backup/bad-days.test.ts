import { afterEach, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readStatus } from "../../src/backup/status.ts";
import { writeSecretFile } from "../../src/lib/secret-file.ts";
import { runCli } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import {
  type BackupFixture,
  backupFixture,
  lockIds,
  resticMatrix,
  snapshotCount,
  useRestic,
} from "../helpers/restic.ts";
import { waitFor } from "../helpers/wait.ts";
import { seedFrameLikeData } from "./fixtures.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

async function readyFixture(backup?: Record<string, unknown>): Promise<BackupFixture> {
  db = await freshDatabase("bk");
  await seedFrameLikeData(db.sql, 300);
  const fx = backupFixture({ database: db.target, backup });
  const init = await runCli(["backup", "init", "--config", fx.configDir]);
  expect(init.code).toBe(0);
  return fx;
}

for (const restic of resticMatrix())
  describe(`[restic ${restic.version}] backup on bad days`, () => {
    useRestic(restic);
    /** Version-independent cases run on the first restic only (the suite's time). */
    const primary = restic === resticMatrix()[0];

    (primary ? test : test.skip)(
      "restic missing: exit 7 with the install command; status still answers",
      async () => {
        const fx = await readyFixture();
        const missing = backupFixture({ database: db!.target, backup: { restic: "/nonexistent/bin/restic" } });
        const run = await runCli(["backup", "run", "--tier", "local", "--config", missing.configDir]);
        expect(run.code).toBe(7);
        expect(run.stderr).toContain("restic not found (/nonexistent/bin/restic)");
        expect(run.stderr).toContain("brew install restic");
        expect(run.stderr).not.toContain("    at "); // no stack trace
        const status = await runCli(["backup", "status", "--config", missing.configDir]);
        expect(status.code).toBe(7);
        expect(status.stdout).toContain("last run failed");
        expect(fx.configDir).not.toBe(missing.configDir);
      },
      60_000,
    );

    test("no repository yet (restic >= 0.17: exit 10): exit 7 says to run backup init", async () => {
      db = await freshDatabase("bk");
      const fx = backupFixture({ database: db.target });
      writeSecretFile(fx.passwordFile("local"), "a-password\n");
      const run = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
      expect(run.code).toBe(7);
      expect(run.stderr).toContain(`local tier (${fx.localRepo})`);
      expect(run.stderr).toContain("no repository there");
      expect(run.stderr).toContain("axe-appliance backup init");
    }, 60_000);

    test("wrong password: exit 7, says which file, the repository is unchanged", async () => {
      const fx = await readyFixture();
      const right = join(fx.secretsDir, "right.password");
      copyFileSync(fx.passwordFile("local"), right);
      writeSecretFile(fx.passwordFile("local"), "not-the-password\n");
      const run = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
      expect(run.code).toBe(7);
      expect(run.stderr).toContain(`the password in ${fx.passwordFile("local")} does not open this repository`);
      expect(snapshotCount(fx.localRepo, right)).toBe(0);
    }, 60_000);

    (primary ? test : test.skip)(
      "a password file others can read is refused before restic runs",
      async () => {
        const fx = await readyFixture();
        const file = fx.passwordFile("local");
        Bun.spawnSync(["chmod", "644", file]);
        const run = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
        expect(run.code).toBe(7);
        expect(run.stderr).toContain(`error: local: password file ${file} has mode 644`); // the tier named once
        expect(run.stderr).toContain(`chmod 600 ${file}`);
        expect(statSync(file).mode & 0o777).toBe(0o644);
      },
      60_000,
    );

    test("a stale lock left by kill -9 is removed, because no runner of ours is alive; a live runner is respected", async () => {
      const fx = await readyFixture();
      // A restic writing a backup is killed with -9 mid-stream: its lock stays in the repository.
      const victim = spawn(restic.bin, ["backup", "--stdin", "--stdin-filename", "frame.dump"], {
        env: {
          ...process.env,
          RESTIC_REPOSITORY: fx.localRepo,
          RESTIC_PASSWORD_FILE: fx.passwordFile("local"),
          RESTIC_CACHE_DIR: join(fx.dataDir, "cache", "restic"),
        },
        stdio: ["pipe", "ignore", "ignore"],
      });
      victim.stdin!.on("error", () => {}); // EPIPE once it is killed
      victim.stdin!.write(Buffer.alloc(1 << 20, 7));
      await waitFor("the killed restic's lock", () => lockIds(fx.localRepo, fx.passwordFile("local")).length > 0, {
        intervalMs: 100,
      });
      expect(lockIds(fx.localRepo, fx.passwordFile("local")).length).toBe(1);
      const exited = new Promise((resolve) => victim.on("exit", resolve));
      victim.kill("SIGKILL");
      await exited;
      victim.stdin!.destroy();
      // Our runner died too: its lock file names a PID that is gone.
      mkdirSync(join(fx.dataDir, "run"), { recursive: true });
      writeFileSync(
        join(fx.dataDir, "run", "backup.lock"),
        JSON.stringify({ pid: victim.pid, started: new Date().toISOString() }),
      );

      // While a live process holds the runner lock, nothing is unlocked or run.
      writeFileSync(
        join(fx.dataDir, "run", "backup.lock"),
        JSON.stringify({ pid: process.pid, started: new Date().toISOString() }),
      );
      const refused = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
      expect(refused.code).toBe(7);
      expect(refused.stderr).toContain(`another backup runner (PID ${process.pid}`);
      expect(lockIds(fx.localRepo, fx.passwordFile("local")).length).toBe(1);

      writeFileSync(
        join(fx.dataDir, "run", "backup.lock"),
        JSON.stringify({ pid: victim.pid, started: new Date().toISOString() }),
      );
      const run = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
      expect(run.stderr).not.toContain("error:");
      expect(run.code).toBe(0);
      expect(lockIds(fx.localRepo, fx.passwordFile("local"))).toEqual([]);
      expect(snapshotCount(fx.localRepo, fx.passwordFile("local"))).toBe(2);
    }, 90_000);

    test("a live restic's lock is never removed: the run fails with restic's message and forgets nothing", async () => {
      const fx = await readyFixture();
      expect((await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir])).code).toBe(0);
      const before = snapshotCount(fx.localRepo, fx.passwordFile("local"));
      const dumpBefore = readStatus(fx.stateDir).tiers.local!.lastSnapshot!.dumpId;
      // A restic run by hand, alive but stopped (SIGSTOP), holds its lock.
      const other = spawn(restic.bin, ["backup", "--stdin", "--stdin-filename", "hand.dump"], {
        env: {
          ...process.env,
          RESTIC_REPOSITORY: fx.localRepo,
          RESTIC_PASSWORD_FILE: fx.passwordFile("local"),
          RESTIC_CACHE_DIR: join(fx.dataDir, "cache", "restic"),
        },
        stdio: ["pipe", "ignore", "ignore"],
      });
      other.stdin!.on("error", () => {});
      other.stdin!.write(Buffer.alloc(1 << 16, 1));
      try {
        await waitFor("the other restic's lock", () => lockIds(fx.localRepo, fx.passwordFile("local")).length > 0, {
          intervalMs: 100,
        });
        process.kill(other.pid!, "SIGSTOP");
        const run = await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir]);
        expect(run.code).toBe(7);
        expect(run.stderr).toContain("the repository is locked by another restic");
        expect(run.stderr).toContain("the new snapshots are saved, nothing was forgotten");
        expect(lockIds(fx.localRepo, fx.passwordFile("local")).length).toBe(1);
        const local = readStatus(fx.stateDir).tiers.local!;
        expect(local.lastAttempt).toMatchObject({ ok: false, code: "REPO_LOCKED" });
        expect(local.lastSnapshot!.dumpId).toMatch(/^[0-9a-f]{8}$/);
        expect(local.lastSnapshot!.dumpId).not.toBe(dumpBefore!); // the new, saved dump is the last good one
        // The new dump was saved before retention found the lock; retention did not run, so nothing was forgotten.
        expect(snapshotCount(fx.localRepo, fx.passwordFile("local"))).toBeGreaterThan(before);
      } finally {
        process.kill(other.pid!, "SIGCONT");
        const exited = new Promise((resolve) => other.on("exit", resolve));
        other.kill("SIGKILL");
        await exited;
      }
    }, 90_000);

    (primary ? test : test.skip)(
      "verify proves a restore; a corrupted pack file is found; changed figures fail the drill",
      async () => {
        const fx = await readyFixture();
        expect((await runCli(["backup", "run", "--tier", "local", "--config", fx.configDir])).code).toBe(0);
        const good = await runCli(["backup", "verify", "--config", fx.configDir]);
        expect(good.stderr).not.toContain("error:");
        expect(good.code).toBe(0);
        expect(good.stdout).toMatch(
          /local: check passed \(100% of the data read\); dump [0-9a-f]{8} restored and proven: row counts and checksums match in 5 tables/,
        );
        const proven = readStatus(fx.stateDir).tiers.local!;
        expect(proven.lastProvenRestore?.snapshot).toBe(proven.lastDrill!.snapshot!);
        const drills = await db!.sql`select count(*)::int as n from pg_database where datname like 'axe_drill_%'`;
        expect(drills[0]!.n).toBe(0); // the scratch database is gone

        // The drill compares with the figures taken at dump time: change one and the drill fails.
        const figuresFile = join(fx.stateDir, "backup-figures.json");
        const original = readFileSync(figuresFile, "utf8");
        writeFileSync(figuresFile, original.replace(/"rows":"300"/, '"rows":"301"'));
        const mismatch = await runCli(["backup", "verify", "--config", fx.configDir]);
        expect(mismatch.code).toBe(7);
        expect(mismatch.stderr).toMatch(/entity_alpha\.records: 300 rows restored, 301 dumped/);
        writeFileSync(figuresFile, original);

        // Flip bytes in the middle of the biggest pack file.
        const packs = readdirSync(join(fx.localRepo, "data"), { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile())
          .map((e) => join(e.parentPath, e.name))
          .sort((a, b) => statSync(b).size - statSync(a).size);
        const pack = packs[0]!;
        const bytes = readFileSync(pack);
        for (let i = 0; i < 64; i++) bytes[Math.floor(bytes.length / 2) + i]! ^= 0xff;
        Bun.spawnSync(["chmod", "u+w", pack]);
        writeFileSync(pack, bytes);
        const bad = await runCli(["backup", "verify", "--config", fx.configDir]);
        expect(bad.code).toBe(7);
        expect(bad.stderr).toContain("local: restic check found damage");
        expect(readStatus(fx.stateDir).tiers.local?.lastCheck?.ok).toBe(false);
        const status = await runCli(["backup", "status", "--config", fx.configDir]);
        expect(status.code).toBe(7);
        expect(status.stdout).toContain("last check failed");
      },
      180_000,
    );
  });
