/**
 * The ring peer is another customer's machine: it cannot forge our encrypted snapshots, but it can
 * serve an older copy of the repository (its disk from last week, or on purpose). A restore or a
 * drill of "latest" must not take that for the newest without a word.
 */
import { expect, test } from "bun:test";
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readStatus } from "../../src/backup/status.ts";
import { runCli } from "../helpers/cli.ts";
import { forThisTest } from "../helpers/lifecycle.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import { backupFixture, resticJson, ringOverSsh } from "../helpers/restic.ts";
import { startSshd } from "../helpers/sshd.ts";
import { tempDir } from "../helpers/tmp.ts";
import { seedFrameLikeData } from "./fixtures.ts";

/** How the CLI prints a snapshot's time: UTC, to the second. */
const utc = (time: string) => `${new Date(time).toISOString().slice(0, 19)}Z`;

test("a peer that serves an older copy: restore and verify of latest refuse it, naming both times; an explicit id restores and says its time; a run fails rather than record it", async () => {
  const db = forThisTest(await freshDatabase("bk"), (d) => d.drop());
  await seedFrameLikeData(db.sql, 50);
  const peer = tempDir("axe-peer");
  const ringDir = join(peer, "ring", "axe");
  const older = join(peer, "older");
  // The peer's sftp: once `replaying` exists, every session starts from its older copy again.
  const replaying = join(peer, "replaying");
  const sftpServer = [
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/sftp-server",
    "/usr/libexec/openssh/sftp-server",
  ].find((p) => existsSync(p))!;
  const script = join(peer, "sftp.sh");
  writeFileSync(
    script,
    `if [ -f ${replaying} ]; then rm -rf ${ringDir} && cp -R ${older} ${ringDir} || exit 1; fi\nexec ${sftpServer}\n`,
  );
  const sshd = forThisTest(await startSshd({ forcedCommand: `/bin/sh ${script}` }), (s) => s.stop());
  const fx = backupFixture({ database: db.target, ring: ringOverSsh(sshd.configFile("peer"), ringDir).ring });
  expect((await runCli(["backup", "init", "--config", fx.configDir])).code).toBe(0);
  const first = await runCli(["backup", "run", "--config", fx.configDir]);
  expect(first.code).toBe(0);
  cpSync(ringDir, older, { recursive: true });
  const oldIds = (resticJson(older, fx.passwordFile("ring"), ["snapshots"]) as Array<{ id: string; time: string }>)
    .sort((a, b) => a.time.localeCompare(b.time))
    .map((s) => s.id);

  const second = await runCli(["backup", "run", "--config", fx.configDir]);
  expect(second.code).toBe(0);
  const seen = readStatus(fx.stateDir).tiers.ring!.lastSnapshot!;

  // The peer puts back what it held after the first run.
  rmSync(ringDir, { recursive: true });
  cpSync(older, ringDir, { recursive: true });

  const target = join(tempDir("axe-restore"), "files");
  const restore = await runCli([
    "backup",
    "restore",
    "--tier",
    "ring",
    "--snapshot",
    "latest",
    "--to-dir",
    target,
    "--config",
    fx.configDir,
  ]);
  expect(restore.code).not.toBe(0);
  expect(restore.stderr).toContain("older copy");
  expect(restore.stderr).toContain(utc(seen.time));
  expect(existsSync(target)).toBe(false);

  const verify = await runCli(["backup", "verify", "--config", fx.configDir]);
  expect(verify.code).toBe(8);
  expect(verify.stdout).toMatch(/local: check passed/);
  expect(verify.stderr).toContain("older copy");
  expect(verify.stdout).not.toMatch(/ring: check passed .* restored and proven/);
  expect(readStatus(fx.stateDir).tiers.ring?.lastProvenRestore).toBeUndefined();

  // Named by id, the old snapshot restores, and the output says when it was taken.
  const oldFiles = oldIds.at(-1)!;
  const named = await runCli([
    "backup",
    "restore",
    "--tier",
    "ring",
    "--snapshot",
    oldFiles.slice(0, 8),
    "--to-dir",
    target,
    "--config",
    fx.configDir,
  ]);
  expect(named.stderr).toBe("");
  expect(named.code).toBe(0);
  const oldTime = (
    resticJson(older, fx.passwordFile("ring"), ["snapshots"]) as Array<{ id: string; time: string }>
  ).find((s) => s.id === oldFiles)!.time;
  expect(named.stdout).toContain(`taken ${utc(oldTime)}, from the ring tier`);
  expect(readFileSync(join(target, fx.configDir, "appliance.yaml"), "utf8")).toContain("backup");

  // A peer that keeps replaying: what a run copies is gone by its next session. The run fails the
  // ring and keeps the record of the newest snapshot the peer held, rather than record an older one.
  writeFileSync(replaying, "");
  const run = await runCli(["backup", "run", "--tier", "ring", "--config", fx.configDir]);
  expect(run.code).toBe(7);
  expect(run.stderr).toContain("older copy");
  expect(readStatus(fx.stateDir).tiers.ring?.lastSnapshot).toEqual(seen);
  const status = await runCli(["backup", "status", "--config", fx.configDir]);
  expect(status.stdout).toContain("older copy");
}, 600_000); // 85 s alone, 160 s at load 16: a bound for a hang only
