/**
 * A third review of the deploy path (decision 69): what an account that can write into the deploy
 * account's home, or set the environment it calls sudo with, can make the root receiver run
 * without the release key. Real receiver processes and real signed releases.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { journalFor } from "../../src/deploy/receive.ts";
import { tempDir } from "../helpers/tmp.ts";
import { type ApplianceUnderTest, releaseStreamFile, runAppliance, startAppliance } from "./appliance.ts";
import { makeRelease } from "./fixtures.ts";

let app: ApplianceUnderTest;

beforeAll(async () => {
  app = await startAppliance();
  const first = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("9.0.0-a"))).done;
  if (first.code !== 0) throw new Error(`setup deploy failed: ${first.stdout} ${first.stderr}`);
}, 120_000);

afterAll(async () => {
  await app?.stop();
});

describe("the receiver runs only what the release key signed", () => {
  test("not a bunfig.toml preload or a .env in the directory it starts in (the deploy account's home, under sudo)", async () => {
    const home = tempDir("axe-deploy-home");
    const marker = join(home, "ran-as-root");
    const preload = join(home, "evil.js");
    writeFileSync(
      preload,
      `require("node:fs").appendFileSync(${JSON.stringify(marker)}, process.argv.slice(1).join(" ") + "\\n");\n`,
    );
    writeFileSync(join(home, "bunfig.toml"), `preload = [${JSON.stringify(preload)}]\n`);
    writeFileSync(join(home, ".env"), "AXE_DEPLOY_WHO=planted-by-home\n");
    const run = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("9.0.0-b")), {
      cwd: home,
      env: { AXE_DEPLOY_WHO: undefined },
    }).done;
    expect(existsSync(marker) ? readFileSync(marker, "utf8") : "").toBe(""); // neither the receiver nor --version, migrate
    expect(run.report?.ok).toBe(true);
    const last = journalFor(app.config).read().at(-1)!;
    expect(last.who).not.toContain("planted-by-home");
  }, 180_000);

  // sudo keeps the caller's PATH unless sudoers sets secure_path, and macOS's does not: the deploy
  // account (or its ~/.zshenv, which zsh reads for the forced command) chose where root found launchctl
  test.skipIf(process.getuid?.() !== 0)(
    "not a launchctl or systemctl found on the PATH its caller gave it (as root)",
    async () => {
      const evil = tempDir("axe-deploy-path");
      const marker = join(evil, "ran-as-root");
      for (const name of ["launchctl", "systemctl"]) {
        writeFileSync(join(evil, name), `#!/bin/sh\necho "${name} $*" >>"${marker}"\nexit 1\n`);
        chmodSync(join(evil, name), 0o755);
      }
      const yaml = join(app.config.dir, "appliance.yaml");
      const before = readFileSync(yaml, "utf8");
      writeFileSync(yaml, before.replace("service_backend: child", "service_backend: systemd"));
      try {
        const run = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("9.0.0-c")), {
          env: { PATH: `${evil}:${process.env.PATH}` },
        }).done;
        expect(run.report?.steps.map((s) => s.step)).toContain("start"); // it got as far as restarting a color
        expect(existsSync(marker) ? readFileSync(marker, "utf8") : "").toBe("");
      } finally {
        writeFileSync(yaml, before);
      }
    },
    180_000,
  );
});
