import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { deployHistory } from "../../src/deploy/history.ts";
import { generateReleaseKeyPair } from "../../src/deploy/sign.ts";
import { colorUrl } from "../../src/deploy/switch.ts";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { runCli } from "../helpers/cli.ts";
import { TEST_CUSTOMERS } from "../helpers/config.ts";
import { startSshd, type TestSshd } from "../helpers/sshd.ts";
import { tempDir } from "../helpers/tmp.ts";
import { type ApplianceUnderTest, healthOf, startAppliance } from "./appliance.ts";
import { makeRelease, releaseKeys } from "./fixtures.ts";

let app: ApplianceUnderTest;
let sshd: TestSshd;
let fleetFile: string;
let sshConfig: string;

beforeAll(async () => {
  app = await startAppliance();
  // the machine's authorized_keys: the deploy key may only run the receiver (what docs/operations.md says)
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
  // both customers' machine names lead to this one sshd (and so to the one appliance under test)
  sshConfig = join(dir, "ssh_config");
  writeFileSync(
    sshConfig,
    readFileSync(sshd.configFile("axe-macmini"), "utf8") + readFileSync(sshd.configFile("other-macmini"), "utf8"),
  );
}, 90_000);

afterAll(async () => {
  await sshd?.stop();
  await app?.stop();
});

const push = (args: string[]) => runCli(["deploy", "push", "--customers", fleetFile, ...args]);

describe("deploy push over ssh to the forced-command receiver", () => {
  test("pushes a release to one customer and prints the receiver's report", async () => {
    const release = await makeRelease("3.0.0-a");
    const run = await push(["--to", "axe", "--release", release.dir, "--ssh-config", sshConfig]);
    if (run.code !== 0) console.error(run.stdout, run.stderr);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("axe (axe-macmini): deploy 3.0.0-a ok, green is live");
    expect(run.stdout).toMatch(/ok +switch .*-> green/);
    expect(run.stderr).not.toContain("["); // no progress bar when stderr is not a terminal
    expect(run.stderr).toContain(
      `pushing 3.0.0-a (sequence ${(release.manifest as { sequence: number }).sequence}) to axe`,
    );
    expect((await proxyStatus(app.socket)).live).toBe("green");
    expect(await healthOf(colorUrl(app.config, "green"))).toMatchObject({ release: "3.0.0-a" });
    expect(deployHistory(app.config).at(-1)).toMatchObject({ release: "3.0.0-a", ok: true, who: "operator@test" });
  }, 120_000);

  test("a release signed with another key is refused on the operator's side, before ssh", async () => {
    const stranger = await makeRelease("3.0.0-x", { keys: await generateReleaseKeyPair() });
    const before = deployHistory(app.config).length;
    const run = await push(["--to", "axe", "--release", stranger.dir, "--ssh-config", sshConfig]);
    expect(run.code).toBe(6);
    expect(run.stderr).toContain("would be refused by the machines");
    expect(deployHistory(app.config).length).toBe(before);
  }, 60_000);

  test("--all goes customer by customer and stops at the first failure", async () => {
    const release = await makeRelease("3.0.0-b");
    // both names lead to this one appliance, so the second push finds the release already live there
    const all = await push(["--all", "--release", release.dir, "--ssh-config", sshConfig, "--json", "--force"]);
    if (all.code !== 0) console.error(all.stdout, all.stderr);
    expect(all.code).toBe(0);
    const results = JSON.parse(all.stdout) as Array<{ customer: string; ok: boolean; report: { release: string } }>;
    expect(results.map((r) => [r.customer, r.ok, r.report.release])).toEqual([
      ["axe", true, "3.0.0-b"],
      ["other", true, "3.0.0-b"],
    ]);

    // now the first machine in the order is unreachable: nothing after it is pushed
    const broken = join(tempDir("axe-operator"), "ssh_config");
    writeFileSync(broken, readFileSync(sshd.configFile("other-macmini"), "utf8"));
    const before = deployHistory(app.config).length;
    const stopped = await push(["--all", "--release", release.dir, "--ssh-config", broken]);
    if (stopped.code !== 6) console.error(stopped.stderr);
    expect(stopped.code).toBe(6);
    expect(stopped.stderr).toContain("error: deploy to axe failed: push: ssh");
    expect(stopped.stderr).toContain("not pushed: other");
    expect((stopped.stdout + stopped.stderr).split("push: ssh").length - 1).toBe(1); // the error once
    expect(stopped.stderr).toContain("hint: check that the machine is up on Tailscale");
    expect(deployHistory(app.config).length).toBe(before);
  }, 180_000);
});
