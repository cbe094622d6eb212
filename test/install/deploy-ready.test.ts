/**
 * A test install that can take a deploy (issue 19): a fresh `install.sh --prefix DIR --no-services`
 * plus the steps docs/operations.md gives ("A test install") receives a `deploy push` over a real
 * sshd, with no file edited by hand: the sshd reads the authorized_keys install.sh wrote, `up`
 * runs the appliance, and the receiver restarts `up`'s colors through the child backend.
 * Then what an operator does next with it: install.sh again on the live install, uninstall, purge.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { hostTarget } from "../../build/compile.ts";
import { writeReleaseDir } from "../../src/deploy/release-dir.ts";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { releaseKeys } from "../deploy/fixtures.ts";
import { REPO, runCli } from "../helpers/cli.ts";
import { TEST_CUSTOMERS } from "../helpers/config.ts";
import { freePort } from "../helpers/ports.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { startSshd, type TestSshd } from "../helpers/sshd.ts";
import { tempDir } from "../helpers/tmp.ts";
import { machineArgs, release, runInstall } from "./harness.ts";

let db: TestDatabase;
let sshd: TestSshd;
let prefix: string;
let fleet: string;
let keysFile: string;
let ports: { proxy: number; blue: number; green: number };
let up: ReturnType<typeof Bun.spawn> | undefined;
let upLog = "";

const user = () => Bun.spawnSync(["id", "-un"]).stdout.toString().trim();

beforeAll(async () => {
  release();
  db = await freshDatabase("ready");
  const home = tempDir("axe-ready-home");
  keysFile = join(home, "authorized_keys"); // install.sh writes it; the sshd reads it
  sshd = await startSshd({ authorizedKeysFile: keysFile });
  fleet = join(tempDir("axe-ready-fleet"), "customers.yaml");
  const customers = TEST_CUSTOMERS.customers.map((c) => ({ ...c, ssh_user: sshd.user }));
  writeFileSync(
    fleet,
    stringify({ ...TEST_CUSTOMERS, ring: ["axe"], customers, release_public_key: (await releaseKeys()).publicPem }),
  );
  prefix = join(tempDir("axe-ready"), "axe");
  ports = { proxy: await freePort(), blue: await freePort(), green: await freePort() };
}, 240_000);

afterAll(async () => {
  up?.kill("SIGTERM");
  await up?.exited;
  await sshd?.stop();
  await db?.drop();
});

const cfg = () => join(prefix, "config");

async function startUp(): Promise<void> {
  up = Bun.spawn([join(prefix, "bin/axe-appliance"), "up", "--config", cfg()], {
    env: { ...process.env, AXE_CONFIG_DIR: "" },
    stdout: "pipe",
    stderr: "pipe",
  });
  void (async () => {
    for await (const chunk of up!.stderr as ReadableStream<Uint8Array>) upLog += new TextDecoder().decode(chunk);
  })();
  const socket = join(prefix, "data/run/proxy.sock");
  const deadline = Date.now() + 90_000;
  for (;;) {
    const status = await proxyStatus(socket).catch(() => undefined);
    if (status?.colors.blue.healthy && status.colors.green.healthy) return;
    if (Date.now() > deadline || up.exitCode !== null) throw new Error(`up did not come up: ${upLog.slice(-3000)}`);
    await Bun.sleep(200);
  }
}

describe("a test install takes a deploy", () => {
  test("install.sh --no-services, `up`, then `deploy push` over a real sshd: the new release goes live", async () => {
    const passwordFile = join(tempDir("axe-ready-pw"), "pw");
    writeFileSync(passwordFile, `${db.target.password ?? ""}\n`, { mode: 0o600 });
    const install = await runInstall([
      // `up`'s proxy must not take 127.0.0.1:3714, the default metrics port, from whatever else runs here
      ...machineArgs({ prefix, fleet, db, passwordFile, ports: { ...ports, metrics: "off" } }),
      "--deploy-user",
      user(),
      "--deploy-key",
      `${sshd.clientKey}.pub`,
      "--authorized-keys",
      keysFile,
    ]);
    if (install.code !== 0) console.error(install.stdout, install.stderr);
    expect(install.code).toBe(0);
    expect(install.stdout).toContain(`run it: ${prefix}/bin/axe-appliance up --config ${cfg()}`);
    expect(readFileSync(keysFile, "utf8")).not.toContain("sudo"); // no sudoers rule under --no-services

    await startUp();

    // the operator's side: a signed release of the same build under a new version
    const version = Bun.spawnSync([release().binary, "--version"]).stdout.toString();
    const commit = /\(commit (\S+),/.exec(version)![1]!;
    const next = await writeReleaseDir({
      binary: release().binary,
      outDir: join(tempDir("axe-ready-rel"), "9.1.0"),
      version: "9.1.0-ready",
      commit,
      target: hostTarget(),
      privatePem: (await releaseKeys()).privatePem,
    });
    const push = await runCli(
      [
        "deploy",
        "push",
        "--to",
        "axe",
        "--release",
        next.dir,
        "--customers",
        fleet,
        "--ssh-config",
        sshd.configFile("axe-macmini"),
      ],
      { cwd: REPO },
    );
    if (push.code !== 0) console.error(push.stdout, push.stderr, upLog.slice(-3000));
    expect(push.code).toBe(0);
    expect(push.stdout).toMatch(/ok +start .*restarted on 9\.1\.0-ready/);
    expect(push.stdout).toMatch(/deploy 9\.1\.0-ready ok, (blue|green) is live/);
    const status = await proxyStatus(join(prefix, "data/run/proxy.sock"));
    expect(status.colors[status.live].release).toBe("9.1.0-ready");
  }, 300_000);

  test("install.sh again on the live install: its own ports are ours, and `next` names the installed port", async () => {
    const again = await runInstall(["--prefix", prefix, "--no-services", "--customers", fleet]);
    if (again.code !== 0) console.error(again.stdout, again.stderr);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`publish unix:${join(prefix, "data/run/tunnel.sock")} as`);
    expect(again.stdout).toContain(`publish http://127.0.0.1:${ports.proxy} as`);
    expect(again.stdout).toMatch(new RegExp(`OK +port ${ports.proxy} \\(proxy\\) +in use by this axe-appliance`));
  }, 120_000);

  test("uninstall warns that the appliance still runs; purge refuses under it, then removes the status key's line too", async () => {
    const uninstall = await runInstall([
      "--prefix",
      prefix,
      "--no-services",
      "--uninstall",
      "--authorized-keys",
      keysFile,
    ]);
    expect(uninstall.code).toBe(0);
    expect(uninstall.stderr).toMatch(/still running from .*: (proxy|blue|green) \(pid \d+\)/);
    expect(uninstall.stderr).toContain("uninstall does not stop them");

    const purge = ["--prefix", prefix, "--no-services", "--uninstall", "--purge", "--customer", "axe"];
    const dry = await runInstall([...purge, "--dry-run", "--authorized-keys", keysFile]);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toContain("--purge refuses to delete");
    const refused = await runInstall([...purge, "--authorized-keys", keysFile]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("stop them first");
    expect(existsSync(prefix)).toBe(true);

    up!.kill("SIGTERM");
    await up!.exited;
    up = undefined;
    const statusLine = `restrict,command="${prefix}/bin/axe-appliance status --json --config ${cfg()}" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStatusKey status`;
    appendFileSync(keysFile, `${statusLine}\n`);
    const purged = await runInstall([...purge, "--authorized-keys", keysFile]);
    if (purged.code !== 0) console.error(purged.stdout, purged.stderr);
    expect(purged.code).toBe(0);
    expect(existsSync(prefix)).toBe(false);
    expect(readFileSync(keysFile, "utf8")).not.toContain(prefix);
  }, 180_000);
});
