import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readStatus } from "../../src/backup/status.ts";
import { type CliResult, MAIN, REPO } from "../helpers/cli.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { backupFixture, resticMatrix, ringOverSsh, snapshotCount, useRestic } from "../helpers/restic.ts";
import { startSshd, type TestSshd } from "../helpers/sshd.ts";
import { tempDir } from "../helpers/tmp.ts";
import { seedFrameLikeData } from "./fixtures.ts";

let db: TestDatabase | undefined;
let sshd: TestSshd | undefined;
const stopped: number[] = [];
afterEach(async () => {
  for (const pid of stopped.splice(0)) process.kill(pid, "SIGCONT");
  await sshd?.stop();
  await db?.drop();
  sshd = undefined;
  db = undefined;
});

/** The CLI, killed if it outlives `limitMs` (a hung run must not outlive the test either). */
async function runBounded(args: string[], limitMs = 150_000): Promise<CliResult & { killed: boolean }> {
  const child = Bun.spawn([process.execPath, MAIN, ...args], {
    cwd: REPO,
    env: { ...process.env, AXE_CONFIG_DIR: "" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, limitMs);
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr, killed };
}

/** An ssh_config like the runbook's: no ConnectTimeout, no ServerAlive: the command we generate must carry them. */
function plainSshConfig(peer: TestSshd): string {
  const file = join(peer.dir, "ssh_config_plain");
  writeFileSync(
    file,
    [
      "Host peer",
      "  HostName 127.0.0.1",
      `  Port ${peer.port}`,
      `  User ${peer.user}`,
      `  IdentityFile ${peer.clientKey}`,
      "  IdentitiesOnly yes",
      "  BatchMode yes",
      "  StrictHostKeyChecking no",
      `  UserKnownHostsFile ${join(peer.dir, "known_hosts")}`,
      "  LogLevel ERROR",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return file;
}

for (const restic of resticMatrix())
  describe(`[restic ${restic.version}] a hung ring peer`, () => {
    useRestic(restic);
    /** Version-independent cases run on the first restic only (the suite's time). */
    const primary = restic === resticMatrix()[0];

    test("sshd stopped (accepts TCP, never answers): the run ends within its deadline with local saved, exit 8, and the next run is not blocked", async () => {
      db = await freshDatabase("bk");
      await seedFrameLikeData(db.sql, 200);
      sshd = await startSshd();
      const { dir: ringDir, ring } = ringOverSsh(plainSshConfig(sshd));
      const fx = backupFixture({ database: db.target, ring: { ...ring, connect_timeout: 5 } });
      expect((await runBounded(["backup", "init", "--config", fx.configDir])).code).toBe(0);
      const first = await runBounded(["backup", "run", "--config", fx.configDir]);
      expect(first.code).toBe(0);
      expect(snapshotCount(ringDir, fx.passwordFile("ring"))).toBe(2);

      process.kill(sshd.pid, "SIGSTOP");
      stopped.push(sshd.pid);
      const hung = await runBounded(["backup", "run", "--config", fx.configDir]);
      expect(hung.killed).toBe(false);
      expect(hung.code).toBe(8);
      expect(hung.stdout).toMatch(/local: database snapshot [0-9a-f]{8}/);
      expect(hung.stderr).toMatch(/ring: .*peer did not answer in 5 s/);
      expect(readStatus(fx.stateDir).tiers.ring!.lastAttempt).toMatchObject({ ok: false, code: "PEER_UNREACHABLE" });

      const next = await runBounded(["backup", "run", "--config", fx.configDir]);
      expect(next.killed).toBe(false);
      expect(next.stderr).not.toContain("another backup runner");
      expect(next.code).toBe(8);
    }, 400_000);

    (primary ? test : test.skip)(
      "a peer's words with terminal control characters (title, erase, move) never reach the operator's terminal",
      async () => {
        db = await freshDatabase("bk");
        await seedFrameLikeData(db.sql, 20);
        // What a neighbour who owns its sshd can send back through ssh's stderr, which restic relays.
        // It answers once restic's sftp hello has arrived (leaving before it would make restic's own
        // write fail), and stays a moment: restic relays a subprocess's stderr from a goroutine of its
        // own, which an exit of restic that comes first cuts short (then the words never reach us).
        const script = join(tempDir("axe-peer"), "hostile-sftp.sh");
        writeFileSync(
          script,
          "head -c 4 >/dev/null; printf '\\033]0;owned\\007\\033[2K\\033[1A\\033]52;c;cm0gLXJmIH4=\\007peer says no\\r\\n' >&2; sleep 2; exit 1\n",
        );
        const fx = backupFixture({
          database: db.target,
          ring: { repository: "sftp:peer:/nowhere", ssh_command: `sh ${script}` },
        });
        const steering = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
        const init = await runBounded(["backup", "init", "--config", fx.configDir]);
        expect(init.code).toBe(8);
        expect(init.stderr).toContain("peer says no");
        const run = await runBounded(["backup", "run", "--tier", "ring", "--config", fx.configDir]);
        expect(run.code).not.toBe(0);
        const status = await runBounded(["backup", "status", "--config", fx.configDir]);
        for (const said of [init.stdout, init.stderr, run.stdout, run.stderr, status.stdout, status.stderr])
          expect(said).not.toMatch(steering);
      },
      120_000,
    );

    (primary ? test : test.skip)(
      "a restic call past its deadline is interrupted and the tier recorded as failed; the other tiers run",
      async () => {
        db = await freshDatabase("bk");
        await seedFrameLikeData(db.sql, 100);
        // An sftp command that never speaks: only restic's own deadline can end the call.
        const fx = backupFixture({
          database: db.target,
          ring: { repository: "sftp:peer:/nowhere", ssh_command: "sleep 60" },
          backup: { deadlines: { quick: 20 } },
        });
        expect((await runBounded(["backup", "init", "--config", fx.configDir])).code).toBe(8);
        fx.setCold(true);
        const run = await runBounded(["backup", "run", "--config", fx.configDir]);
        expect(run.killed).toBe(false);
        expect(run.code).toBe(8);
        expect(run.stderr).toMatch(/ring: .*did not answer in 20 s/);
        expect(run.stdout).toContain("cold: created the repository");
        expect(snapshotCount(fx.coldRepo, fx.passwordFile("cold"))).toBe(2);
      },
      300_000,
    );
  });

describe("the runner lock", () => {
  test("a runner alive past the longest a run may take is red in status and taken over by the next run, which says so", async () => {
    db = await freshDatabase("bk");
    await seedFrameLikeData(db.sql, 100);
    const fx = backupFixture({ database: db.target });
    expect((await runBounded(["backup", "init", "--config", fx.configDir])).code).toBe(0);
    expect((await runBounded(["backup", "run", "--tier", "local", "--config", fx.configDir])).code).toBe(0);
    const hung = Bun.spawn(["sleep", "600"], { stdout: "ignore", stderr: "ignore" });
    try {
      mkdirSync(join(fx.dataDir, "run"), { recursive: true });
      const tenHoursAgo = new Date(Date.now() - 10 * 3_600_000).toISOString();
      writeFileSync(
        join(fx.dataDir, "run", "backup.lock"),
        JSON.stringify({ pid: hung.pid, startedAt: tenHoursAgo, who: "backup runner", detail: "" }),
      );
      const status = await runBounded(["backup", "status", "--config", fx.configDir]);
      expect(status.code).toBe(7);
      expect(status.stdout).toContain(`backup runner PID ${hung.pid} has run for 10.0h`);
      const run = await runBounded(["backup", "run", "--tier", "local", "--config", fx.configDir]);
      expect(run.code).toBe(0);
      expect(run.stderr).toContain(`took over the runner lock of PID ${hung.pid}`);
      expect(run.stderr).toContain("10.0h");
    } finally {
      hung.kill("SIGKILL");
    }
  }, 180_000);
});
