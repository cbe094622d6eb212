/**
 * What `deploy push` believes of the machine's answer: only a report that has the report's shape.
 * The machine here is a stand-in forced command (not our receiver) that prints a made-up report.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { writeReleaseDir } from "../../src/deploy/release-dir.ts";
import { runCli } from "../helpers/cli.ts";
import { TEST_CUSTOMERS } from "../helpers/config.ts";
import { startSshd, type TestSshd } from "../helpers/sshd.ts";
import { tempDir } from "../helpers/tmp.ts";
import { releaseKeys } from "./fixtures.ts";

const sshds: TestSshd[] = [];
afterAll(async () => {
  for (const sshd of sshds) await sshd.stop();
});

/** A machine whose forced command swallows the stream and prints `answer`. */
async function machineAnswering(answer: string) {
  const dir = tempDir("axe-fake-receiver");
  const script = join(dir, "receive.sh");
  writeFileSync(script, `cat >/dev/null\nprintf '%s\\n' '${answer}'\n`);
  const sshd = await startSshd({ forcedCommand: `/bin/sh ${script}` });
  sshds.push(sshd);
  const fleetFile = join(dir, "customers.yaml");
  const customers = TEST_CUSTOMERS.customers.map((c) => ({ ...c, ssh_user: sshd.user }));
  const keys = await releaseKeys();
  writeFileSync(fleetFile, stringify({ ...TEST_CUSTOMERS, customers, release_public_key: keys.publicPem }));
  const sshConfig = join(dir, "ssh_config");
  writeFileSync(sshConfig, readFileSync(sshd.configFile("axe-macmini"), "utf8"));
  const binary = join(dir, "not-really-axe");
  writeFileSync(binary, "#!/bin/sh\n");
  const release = await writeReleaseDir({
    binary,
    outDir: join(dir, "release"),
    version: "7.0.0",
    commit: "0123456789ab",
    target: "linux-x64",
    privatePem: keys.privatePem,
  });
  return [
    "deploy",
    "push",
    "--customers",
    fleetFile,
    "--to",
    "axe",
    "--release",
    release.dir,
    "--ssh-config",
    sshConfig,
  ];
}

describe("deploy push reads the receiver's report through its schema", () => {
  test("a line that only looks like a good report (ok, no steps, nothing else) is not taken for a deploy", async () => {
    const run = await runCli(await machineAnswering('{"type":"report","ok":true,"steps":[]}'));
    expect(run.code).toBe(6);
    expect(run.stderr).toContain("error: deploy to axe failed");
  }, 60_000);

  test("a well-formed report is believed", async () => {
    const report = {
      type: "report",
      ok: true,
      action: "deploy",
      id: "20261130-abc",
      who: "operator@test",
      release: "7.0.0",
      color: "green",
      steps: [{ step: "verify", ok: true, ms: 5, detail: "verified" }],
      totalMs: 5,
    };
    const run = await runCli(await machineAnswering(JSON.stringify(report)));
    if (run.code !== 0) console.error(run.stdout, run.stderr);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("deploy 7.0.0 ok");
  }, 60_000);

  test("a report cannot put terminal control sequences into the operator's output", async () => {
    const steer = "\u001b[2K\u001b[1A\u001b]0;owned\u0007\u202eok";
    const report = {
      type: "report",
      ok: false,
      action: "deploy",
      id: "20261130-abc",
      who: "operator@test",
      release: `7.0.0${steer}`,
      color: "green",
      previous: { color: `blue${steer}` },
      steps: [{ step: "verify", ok: false, ms: 5, error: `bad${steer}` }],
      error: { step: `verify${steer}`, code: "BAD", message: `bad${steer}`, hint: `look${steer}` },
      totalMs: 5,
    };
    const run = await runCli(await machineAnswering(JSON.stringify(report)));
    expect(run.code).toBe(6);
    expect(run.stdout).toContain("FAIL  verify");
    for (const text of [run.stdout, run.stderr])
      expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
  }, 60_000);
});
