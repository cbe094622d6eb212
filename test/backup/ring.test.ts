import { describe, expect, test } from "bun:test";
import { renameSync, rmSync } from "node:fs";
import { readStatus } from "../../src/backup/status.ts";
import { runCli } from "../helpers/cli.ts";
import { forThisTest } from "../helpers/lifecycle.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import {
  backupFixture,
  clearOfMidnight,
  resticJson,
  resticMatrix,
  ringOverSsh,
  snapshotCount,
  useRestic,
} from "../helpers/restic.ts";
import { startSshd } from "../helpers/sshd.ts";
import { seedFrameLikeData } from "./fixtures.ts";

for (const restic of resticMatrix())
  describe(`[restic ${restic.version}] ring tier over sftp to a real sshd on loopback`, () => {
    useRestic(restic);

    test("copies to the peer with the local chunker parameters; peer down: ring fails, local succeeds, exit 8, status says so", async () => {
      await clearOfMidnight(); // retention's count below assumes one day's snapshots
      const db = forThisTest(await freshDatabase("bk"), (d) => d.drop());
      await seedFrameLikeData(db.sql, 500);
      const sshd = forThisTest(await startSshd(), (s) => s.stop());
      const { dir: ringDir, ring } = ringOverSsh(sshd.configFile("peer"));
      const fx = backupFixture({ database: db.target, ring });

      const init = await runCli(["backup", "init", "--config", fx.configDir]);
      expect(init.stderr).toBe("");
      expect(init.stdout).toContain(`ring: created sftp:peer:${ringDir}`);
      const chunker = (repo: string, tier: "local" | "ring") =>
        (resticJson(repo, fx.passwordFile(tier), ["cat", "config"]) as { chunker_polynomial: string })
          .chunker_polynomial;
      expect(chunker(ringDir, "ring")).toBe(chunker(fx.localRepo, "local"));

      const first = await runCli(["backup", "run", "--tier", "all", "--config", fx.configDir]);
      expect(first.stderr).not.toContain("error:");
      expect(first.code).toBe(0);
      expect(first.stdout).toContain("ring: copied to peer");
      expect(snapshotCount(ringDir, fx.passwordFile("ring"))).toBe(2);
      const copies = resticJson(ringDir, fx.passwordFile("ring"), ["snapshots"]) as Array<{
        original?: string;
        tags?: string[];
      }>;
      expect(copies.every((s) => typeof s.original === "string")).toBe(true);

      // A restore drill from the peer's copy proves the ring tier too.
      const verify = await runCli(["backup", "verify", "--config", fx.configDir]);
      expect(verify.stderr).not.toContain("error:");
      expect(verify.code).toBe(0);
      expect(verify.stdout).toMatch(
        /ring: check passed .* restored and proven: row counts and checksums match in 5 tables/,
      );
      expect(readStatus(fx.stateDir).tiers.ring?.lastProvenRestore).toBeDefined();

      // The ring's age is the age of the newest snapshot it holds, not the time of the copy.
      const ringTimes = (resticJson(ringDir, fx.passwordFile("ring"), ["snapshots"]) as Array<{ time: string }>).map(
        (s) => Date.parse(s.time),
      );
      expect(Date.parse(readStatus(fx.stateDir).tiers.ring!.lastSnapshot!.time)).toBe(Math.max(...ringTimes));

      // The local repository is gone: the ring's error says so, and init re-creates local with the ring's chunker.
      renameSync(fx.localRepo, `${fx.localRepo}.gone`);
      const noLocal = await runCli(["backup", "run", "--tier", "ring", "--config", fx.configDir]);
      expect(noLocal.code).toBe(7);
      expect(noLocal.stderr).toContain(`the source repository ${fx.localRepo} does not exist`);
      expect(noLocal.stderr).not.toContain("no repository there");
      const reinit = await runCli(["backup", "init", "--config", fx.configDir]);
      expect(reinit.code).toBe(0);
      expect(reinit.stdout).toContain("local: created");
      expect(reinit.stdout).toContain("with the ring repository's chunker parameters");
      expect(chunker(fx.localRepo, "local")).toBe(chunker(ringDir, "ring"));
      rmSync(fx.localRepo, { recursive: true });
      renameSync(`${fx.localRepo}.gone`, fx.localRepo);

      const ids = (repo: string, tier: "local" | "ring") =>
        (resticJson(repo, fx.passwordFile(tier), ["snapshots"]) as Array<{ id: string }>).map((s) => s.id).sort();
      const localBefore = ids(fx.localRepo, "local");
      const ringBefore = ids(ringDir, "ring");
      await sshd.stop();
      await db.sql`insert into entity_alpha.records (collection, data) values ('late', '{"after":"peer down"}')`;
      const down = await runCli(["backup", "run", "--tier", "all", "--config", fx.configDir]);
      expect(down.code).toBe(8);
      expect(down.stdout).toMatch(/local: database snapshot [0-9a-f]{8}/);
      expect(down.stderr).toContain("ring tier");
      expect(down.stderr).toContain("cannot reach the peer");
      expect(down.stderr).toContain("partial");
      // Retention (one per day) replaced the local pair with the new one; the peer kept what it had.
      expect(ids(fx.localRepo, "local")).not.toEqual(localBefore);
      expect(snapshotCount(fx.localRepo, fx.passwordFile("local"))).toBe(restic.keepsOldest ? 4 : 2); // >= 0.17 keeps the oldest too
      expect(ids(ringDir, "ring")).toEqual(ringBefore);

      const status = await runCli(["backup", "status", "--json", "--config", fx.configDir]);
      expect(status.code).toBe(7);
      const report = JSON.parse(status.stdout) as { ok: boolean; tiers: Array<{ tier: string; problems: string[] }> };
      expect(report.ok).toBe(false);
      expect(report.tiers.find((t) => t.tier === "local")!.problems).toEqual([]);
      expect(report.tiers.find((t) => t.tier === "ring")!.problems.join(" ")).toContain("last run failed");
    }, 600_000); // 70 s alone, 140 s at load 16 (restic over sftp, many times): a bound for a hang only
  });
