/**
 * The operator's side of a deploy over a real sshd whose forced command is the receiver: what
 * reaches the operator and when, and the pushes a machine refuses (issue 19).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { deployHistory } from "../../src/deploy/history.ts";
import { journalFor } from "../../src/deploy/receive.ts";
import type { ReleaseDir } from "../../src/deploy/release-dir.ts";
import { ALREADY_LIVE, NO_RELEASE_SENT } from "../../src/deploy/steps.ts";
import { colorUrl } from "../../src/deploy/switch.ts";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { checkLastDeploy } from "../../src/status/deploy-check.ts";
import { MAIN, REPO, runCli } from "../helpers/cli.ts";
import { TEST_CUSTOMERS } from "../helpers/config.ts";
import { startSshd, type TestSshd } from "../helpers/sshd.ts";
import { tempDir } from "../helpers/tmp.ts";
import { type ApplianceUnderTest, healthOf, reportOf, runAppliance, startAppliance } from "./appliance.ts";
import { makeRelease, releaseKeys } from "./fixtures.ts";

let app: ApplianceUnderTest;
let sshd: TestSshd;
let fleetFile: string;
let sshConfig: string;
let first: ReleaseDir;

const push = (args: string[]) =>
  runCli(["deploy", "push", "--customers", fleetFile, "--ssh-config", sshConfig, "--to", "axe", ...args]);

beforeAll(async () => {
  app = await startAppliance();
  sshd = await startSshd({
    forcedCommand: `${app.binary} deploy receive --config ${app.config.dir} --who operator@test`,
  });
  const dir = tempDir("axe-operator");
  fleetFile = join(dir, "customers.yaml");
  const customers = TEST_CUSTOMERS.customers.map((c) => ({ ...c, ssh_user: sshd.user }));
  writeFileSync(
    fleetFile,
    stringify({ ...TEST_CUSTOMERS, customers, release_public_key: (await releaseKeys()).publicPem }),
  );
  sshConfig = sshd.configFile("axe-macmini");
  first = await makeRelease("5.0.0-a");
  const run = await push(["--release", first.dir]);
  if (run.code !== 0) throw new Error(`setup push failed: ${run.stdout} ${run.stderr}`);
}, 120_000);

afterAll(async () => {
  await sshd?.stop();
  await app?.stop();
});

const live = async () => (await proxyStatus(app.socket)).live;
const occurrences = (text: string, part: string) => text.split(part).length - 1;

describe("what an ssh connection with the deploy key does", () => {
  test("one that sends nothing (`ssh machine true`) is journaled as no release sent, exits 0, and leaves status alone", async () => {
    const ssh = Bun.spawn(["ssh", "-F", sshConfig, "axe-macmini", "true"], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(ssh.stdout).text(),
      new Response(ssh.stderr).text(),
      ssh.exited,
    ]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(reportOf(stdout)).toMatchObject({ ok: false, nothingDone: NO_RELEASE_SENT, steps: [] });
    const last = deployHistory(app.config).at(-1)!;
    expect(last).toMatchObject({ nothingDone: NO_RELEASE_SENT, ok: false });
    expect(last.failedStep).toBeUndefined();
    const status = checkLastDeploy(app.config).check;
    expect(status).toMatchObject({ level: "ok" });
    expect(status.summary).toContain("5.0.0-a");
    const history = await runAppliance(app, ["deploy", "history"]).done;
    expect(history.stdout.trimEnd().split("\n").at(-1)).toContain("nothing done: no release sent");
  }, 60_000);
});

describe("deploy push", () => {
  test("prints each receiver step while the receiver is still running", async () => {
    const release = await makeRelease("5.0.0-b");
    const journal = journalFor(app.config);
    const before = journal.read().length;
    // The receiver is held at its mcp step, deterministically: the gate's token cannot be written
    // while this transaction locks the token table. Every step before it has ended by then.
    const hold = await app.db!.sql.reserve();
    await hold`begin`;
    await hold`lock table meta.service_tokens in exclusive mode`;
    let child: ReturnType<typeof Bun.spawn> | undefined;
    let printed = "";
    let reading: Promise<void> = Promise.resolve();
    try {
      child = Bun.spawn(
        [
          process.execPath,
          MAIN,
          "deploy",
          "push",
          "--customers",
          fleetFile,
          "--ssh-config",
          sshConfig,
          "--to",
          "axe",
          "--release",
          release.dir,
        ],
        { cwd: REPO, env: { ...process.env, AXE_CONFIG_DIR: "" }, stdout: "pipe", stderr: "pipe" },
      );
      reading = (async () => {
        const decoder = new TextDecoder();
        for await (const chunk of child!.stdout as ReadableStream<Uint8Array>)
          printed += decoder.decode(chunk, { stream: true });
      })();
      const shown = Date.now() + 120_000;
      while (!/ok +health /.test(printed) && Date.now() < shown && child.exitCode === null) await Bun.sleep(20);
      expect(printed).toMatch(/ok +verify .*sha256 verified/);
      expect(printed).toMatch(/ok +health .*answers \/healthz on 5\.0\.0-b/);
      const run = journal.read().slice(before);
      expect(run.some((e) => e.kind === "end")).toBe(false); // the receiver is still at work
      expect(child.exitCode).toBeNull();
      expect(printed).not.toContain("5.0.0-b ok");
    } finally {
      await hold`commit`;
      hold.release();
    }
    expect(await child!.exited).toBe(0);
    await reading;
    expect(printed).toMatch(/ok +prune /);
    expect(printed.trimEnd().split("\n").at(-1)).toMatch(
      /^axe \(axe-macmini\): deploy 5\.0\.0-b ok, blue is live \(\d+ ms\)$/,
    );
    expect(await live()).toBe("blue");
  }, 180_000);

  test("refuses a release whose binary does not match its signed sha256 before anything is sent", async () => {
    const release = await makeRelease("5.0.0-damaged");
    const copy = join(tempDir("axe-rel-copy"), "5.0.0-damaged");
    cpSync(release.dir, copy, { recursive: true });
    const binary = join(copy, "axe-appliance");
    const bytes = readFileSync(binary);
    bytes[bytes.length - 77] = bytes[bytes.length - 77]! ^ 0xff;
    writeFileSync(binary, bytes);
    const before = deployHistory(app.config).length;
    const run = await push(["--release", copy]);
    expect(run.code).toBe(6);
    expect(run.stderr).toContain("does not match its signed manifest");
    expect(occurrences(run.stderr, "does not match its signed manifest")).toBe(1);
    expect(deployHistory(app.config).length).toBe(before); // ssh never ran
  }, 60_000);
});

describe("deploy rollback", () => {
  test("prints the steps and the outcome as a table; --json prints the report", async () => {
    const table = await runAppliance(app, ["deploy", "rollback"]).done;
    if (table.code !== 0) console.error(table.stdout, table.stderr);
    expect(table.code).toBe(0);
    expect(() => JSON.parse(table.stdout)).toThrow();
    expect(table.stdout).toMatch(/^ {2}ok {4}lock /m);
    expect(table.stdout).toMatch(/^ {2}ok {4}switch .*blue -> green/m);
    expect(table.stdout.trimEnd().split("\n").at(-1)).toMatch(/^rollback 5\.0\.0-a ok, green is live \(\d+ ms\)$/);
    expect(await live()).toBe("green");

    const json = await runAppliance(app, ["deploy", "rollback", "--json"]).done;
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, action: "rollback", release: "5.0.0-b", color: "blue" });
    expect(await live()).toBe("blue");
  }, 120_000);
});

describe("pushing the release that is already live", () => {
  test("is refused with the reason once, nothing changes and status stays green; --force deploys it", async () => {
    const again = await makeRelease("5.0.0-b"); // same version and binary, signed again
    const installedBefore = deployHistory(app.config).length;
    const run = await push(["--release", again.dir]);
    expect(run.code).toBe(6);
    const all = run.stdout + run.stderr;
    expect(all).toContain("release 5.0.0-b is already live on blue");
    expect(occurrences(all, "is already live on blue")).toBe(1);
    expect(all).toContain("hint: push a newer release; to deploy this one again on purpose");
    expect(occurrences(all, "hint:")).toBe(1);
    expect(run.stdout).toMatch(/FAIL +verify /);
    expect(run.stdout).toContain("deploy 5.0.0-b: nothing done, already live");
    expect(run.stderr).toContain("error: deploy to axe failed");
    const last = deployHistory(app.config).at(-1)!;
    expect(deployHistory(app.config).length).toBe(installedBefore + 1);
    expect(last).toMatchObject({ release: "5.0.0-b", nothingDone: ALREADY_LIVE });
    expect(checkLastDeploy(app.config).check.level).toBe("ok");
    expect(await live()).toBe("blue");
    expect(await healthOf(colorUrl(app.config, "green"))).toMatchObject({ release: "5.0.0-a" }); // rollback target kept

    const forced = await push(["--release", again.dir, "--force"]);
    if (forced.code !== 0) console.error(forced.stdout, forced.stderr);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/ok +verify .*forced: 5\.0\.0-b was already live on blue/);
    expect(await live()).toBe("green");
    expect(await healthOf(colorUrl(app.config, "green"))).toMatchObject({ release: "5.0.0-b" });
    expect(await healthOf(colorUrl(app.config, "blue"))).toMatchObject({ release: "5.0.0-b" });
  }, 180_000);
});
