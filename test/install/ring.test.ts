/**
 * The ring peer's account (issue 12 item 2): install.sh --ring-peer makes a dedicated account on
 * the machine that keeps a neighbour's backups, sftp-only and chrooted into that neighbour's
 * directory. A real sshd on loopback runs with the Match block install.sh wrote: the neighbour's
 * key runs the whole restic ring tier (init, run, verify, restore) and gets nothing else: no
 * shell, no command, nothing outside its directory.
 *
 * sshd refuses a ChrootDirectory under a directory others can write (/tmp), so the prefix lives
 * under /run; the account is made with a name of this run's own and removed at the end.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { readStatus } from "../../src/backup/status.ts";
import { databaseUrl, seedFrameLikeData } from "../backup/fixtures.ts";
import { runCli } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { backupFixture, snapshotCount } from "../helpers/restic.ts";
import { startSshd, type TestSshd } from "../helpers/sshd.ts";
import { tempDir } from "../helpers/tmp.ts";
import { modeOf, runInstall } from "./harness.ts";

const canRun =
  process.getuid?.() === 0 &&
  existsSync("/usr/sbin/sshd") &&
  spawnSync("sh", ["-c", "command -v useradd"]).status === 0;

const hasGroup = (name: string) => spawnSync("getent", ["group", name]).status === 0;

const uidOf = (user: string) => {
  const run = spawnSync("id", ["-u", user], { encoding: "utf8" });
  return run.status === 0 ? Number(run.stdout) : undefined;
};

describe.skipIf(!canRun)("install.sh --ring-peer: the neighbour's sftp-only, chrooted account", () => {
  const ringUser = `axr${randomBytes(3).toString("hex")}`;
  let base: string;
  let prefix: string;
  let chroot: string;
  let ringKey: string;
  let sshdConfig: string;
  let sshd: TestSshd | undefined;
  let db: TestDatabase | undefined;
  const args = () => [
    "--prefix",
    prefix,
    "--ring-peer",
    "axe",
    "--ring-key",
    `${ringKey}.pub`,
    "--ring-user",
    ringUser,
    "--sshd-config",
    sshdConfig,
    "--no-services",
  ];

  beforeAll(() => {
    base = mkdtempSync("/run/axe-ring-test-");
    chmodSync(base, 0o755);
    prefix = join(base, "opt-axe");
    chroot = join(prefix, "data/backup/ring/axe");
    const keys = tempDir("axe-ring-keys");
    ringKey = join(keys, "ring_ed25519");
    const made = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "root@axe-macmini", "-f", ringKey]);
    if (made.status !== 0) throw new Error(`ssh-keygen: ${made.stderr}`);
    sshdConfig = join(tempDir("axe-ring-sshd"), "axe-ring.conf");
  });

  afterAll(async () => {
    await sshd?.stop();
    await db?.drop();
    if (uidOf(ringUser) !== undefined) spawnSync("userdel", [ringUser]);
    spawnSync("sh", ["-c", 'getent group "$1" >/dev/null && groupdel "$1"', "sh", ringUser]);
    rmSync(base, { recursive: true, force: true });
  });

  test("--dry-run says what it would make and makes nothing", async () => {
    const run = await runInstall([...args(), "--dry-run"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`would create the ring account ${ringUser}`);
    expect(run.stdout).toContain(`would create ${chroot}`);
    expect(run.stdout).toContain(`would write ${sshdConfig}`);
    expect(uidOf(ringUser)).toBeUndefined();
    expect(existsSync(prefix)).toBe(false);
    expect(existsSync(sshdConfig)).toBe(false);
  }, 60_000);

  test("a prefix under a directory others can write (sshd's ChrootDirectory rule) is refused, naming it", async () => {
    const run = await runInstall([...args().slice(2), "--prefix", join(tempDir("axe-ring-tmp"), "axe")]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("/tmp is writable by others");
    expect(uidOf(ringUser)).toBeUndefined();
  }, 60_000);

  test("makes the account, the root-owned chroot with its one writable directory, the key line and the Match block; a second run changes nothing", async () => {
    const run = await runInstall(args());
    if (run.code !== 0) console.error(run.stdout, run.stderr);
    expect(run.code).toBe(0);
    const uid = uidOf(ringUser) ?? -1;
    expect(uid).toBeGreaterThan(0);
    for (const dir of [join(prefix, "data"), join(prefix, "data/backup"), join(prefix, "data/backup/ring"), chroot])
      expect(`${dir} ${lstatSync(dir).uid} ${(lstatSync(dir).mode & 0o022) === 0}`).toBe(`${dir} 0 true`);
    expect({ uid: lstatSync(join(chroot, "axe")).uid, mode: modeOf(join(chroot, "axe")) }).toEqual({
      uid,
      mode: "700",
    });
    const keys = join(prefix, "config/ring/authorized_keys");
    expect({ uid: lstatSync(keys).uid, mode: modeOf(keys) }).toEqual({ uid: 0, mode: "644" });
    const pub = readFileSync(`${ringKey}.pub`, "utf8").trim();
    expect(readFileSync(keys, "utf8")).toBe(`restrict,command="internal-sftp -d /axe" ${pub}\n`);
    const block = readFileSync(sshdConfig, "utf8");
    expect(block).toContain(`Match User ${ringUser}\n`);
    expect(block).toContain(`    ChrootDirectory ${chroot}\n`);
    expect(block).toContain("    ForceCommand internal-sftp -d /axe\n");
    expect(block).toContain(`    AuthorizedKeysFile ${keys}\n`);

    const again = await runInstall(args());
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("nothing to change");
    expect(uidOf(ringUser)).toBe(uid);
  }, 60_000);

  test("the ring key, as backup.ring.identity_file, runs the ring tier into its directory: init, run, verify, restore", async () => {
    sshd = await startSshd({ extraConfig: [`Include ${sshdConfig}`] });
    db = await freshDatabase("ring");
    await seedFrameLikeData(db.sql, 300);
    // The repository is the default for a peer: the ssh command gives this test's port and account only,
    // reading no ssh_config; the key is backup.ring.identity_file, the one key ssh offers (IdentitiesOnly).
    const ssh = `ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=${join(sshd.dir, "known_hosts")}`;
    const fx = backupFixture({
      database: db.target,
      ring: { ssh_command: `${ssh} -p ${sshd.port} -l ${ringUser} 127.0.0.1 -s sftp`, identity_file: ringKey },
    });

    const init = await runCli(["backup", "init", "--config", fx.configDir]);
    expect(init.stderr).toBe("");
    expect(init.stdout).toContain("ring: created sftp:axe-ring@other-macmini:/axe");
    const repo = join(chroot, "axe");
    expect(existsSync(join(repo, "config"))).toBe(true);
    expect(lstatSync(join(repo, "config")).uid).toBe(uidOf(ringUser)!);

    const run = await runCli(["backup", "run", "--tier", "all", "--config", fx.configDir]);
    if (run.code !== 0) console.error(run.stdout, run.stderr);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("ring: copied to peer other");
    expect(snapshotCount(repo, fx.passwordFile("ring"))).toBeGreaterThanOrEqual(2);

    const verify = await runCli(["backup", "verify", "--config", fx.configDir]);
    expect(verify.stdout).toMatch(/ring: check passed .* restored and proven/);
    expect(readStatus(fx.stateDir).tiers.ring?.lastProvenRestore).toBeDefined();

    const target = await freshDatabase("ringrestore");
    try {
      const restore = await runCli([
        "backup",
        "restore",
        "--tier",
        "ring",
        "--snapshot",
        "latest",
        "--to-database",
        databaseUrl(target.target),
        "--config",
        fx.configDir,
      ]);
      expect(restore.stderr).toBe("");
      expect(restore.stdout).toMatch(/^restored database dump [0-9a-f]{8} from the ring tier into /);
      const count = async (sql: TestDatabase["sql"]) =>
        (await sql`select count(*)::int as n from entity_alpha.records`)[0]!.n;
      expect(await count(target.sql)).toBe(await count(db.sql));
    } finally {
      await target.drop();
    }
  }, 240_000);

  test("the ring key gets no shell and runs no command", async () => {
    const ssh = (...command: string[]) =>
      spawnSync(
        "ssh",
        [...sshd!.sshOptions.map((o) => (o === sshd!.clientKey ? ringKey : o)), `${ringUser}@127.0.0.1`, ...command],
        { encoding: "utf8", input: "id\nexit\n", timeout: 30_000 },
      );
    for (const attempt of [ssh("id"), ssh("sh", "-c", "id"), ssh()]) {
      expect(attempt.stdout).not.toContain("uid=");
      expect(attempt.status).not.toBe(0);
      expect(attempt.stdout + attempt.stderr).toContain("This service allows sftp connections only.");
    }
  }, 60_000);

  test("over sftp it reaches its own directory and nothing else: / is the chroot, /etc/passwd is not there, / cannot be written", async () => {
    const local = tempDir("axe-ring-sftp");
    const sftp = (...commands: string[]) =>
      spawnSync(
        "sftp",
        ["-b", "-", "-P", String(sshd!.port), "-i", ringKey, ...sshd!.sshOptions.slice(4), `${ringUser}@127.0.0.1`],
        { encoding: "utf8", input: `${commands.join("\n")}\n`, timeout: 30_000 },
      );
    const listing = sftp("cd /", "pwd", "ls -1 /");
    expect(listing.status).toBe(0);
    expect(listing.stdout).toContain("Remote working directory: /");
    expect(listing.stdout.split("\n").filter((l) => l.startsWith("/") && !l.includes(" "))).toEqual(["/axe"]);

    for (const path of ["/etc/passwd", "/../../../../etc/passwd", "/axe/../../etc/passwd"]) {
      const get = sftp(`get ${path} ${join(local, "passwd")}`);
      expect(get.status).not.toBe(0);
      expect(existsSync(join(local, "passwd"))).toBe(false);
    }
    writeFileSync(join(local, "note"), "from the ring peer\n");
    for (const where of ["/escape", "/../escape", "/axe/../escape"]) {
      const put = sftp(`put ${join(local, "note")} ${where}`);
      expect(put.status).not.toBe(0);
    }
    expect(sftp("mkdir /elsewhere").status).not.toBe(0);
    expect(readdirSync(chroot)).toEqual(["axe"]);
    expect(existsSync(join(base, "escape"))).toBe(false);
  }, 60_000);
  test("--uninstall removes the account, its group, the key line and the Match block it made; the peer's copy stays; again changes nothing", async () => {
    const uninstall = ["--prefix", prefix, "--uninstall", "--sshd-config", sshdConfig, "--no-services"];
    const keys = join(prefix, "config/ring/authorized_keys");
    const made = () => [uidOf(ringUser) !== undefined, hasGroup(ringUser), existsSync(keys), existsSync(sshdConfig)];
    // another prefix's uninstall leaves this prefix's ring account alone
    const other = await runInstall(["--prefix", join(base, "other"), ...uninstall.slice(2)]);
    expect(other.code).toBe(0);
    expect(other.stderr).toContain(`left ${sshdConfig}: it is not this prefix's`);
    expect(made()).toEqual([true, true, true, true]);

    const dry = await runInstall([...uninstall, "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`would remove the ring account ${ringUser}`);
    expect(dry.stdout).toContain(`would remove ${keys}`);
    expect(dry.stdout).toContain(`would remove ${sshdConfig}`);
    expect(made()).toEqual([true, true, true, true]);

    const run = await runInstall(uninstall);
    if (run.code !== 0) console.error(run.stdout, run.stderr);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe("");
    expect(made()).toEqual([false, false, false, false]);
    expect(run.stdout).toContain(`kept ${join(chroot, "axe")}, axe's ring copy; --purge deletes it`);
    expect(existsSync(join(chroot, "axe", "config"))).toBe(true);
    const sftp = spawnSync(
      "sftp",
      ["-b", "-", "-P", String(sshd!.port), "-i", ringKey, ...sshd!.sshOptions.slice(4), `${ringUser}@127.0.0.1`],
      { encoding: "utf8", input: "ls /\n", timeout: 30_000 },
    );
    expect(sftp.status).not.toBe(0);

    const again = await runInstall(uninstall);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain(ringUser);
    expect(again.stdout).toContain("nothing to change");
  }, 60_000);
});
