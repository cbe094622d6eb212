/**
 * A third review of the deploy path (decision 69): what an account that can write into the deploy
 * account's home, or set the environment it calls sudo with, can make the root receiver run
 * without the release key. Real receiver processes and real signed releases.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { readColors } from "../../src/deploy/colors.ts";
import { journalFor } from "../../src/deploy/receive.ts";
import type { ReleaseDir } from "../../src/deploy/release-dir.ts";
import { encodeReleaseHeader } from "../../src/deploy/release-stream.ts";
import { releasesDir } from "../../src/deploy/releases.ts";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { tempDir } from "../helpers/tmp.ts";
import { type ApplianceUnderTest, releaseStreamFile, runAppliance, startAppliance } from "./appliance.ts";
import { makeRelease } from "./fixtures.ts";

let app: ApplianceUnderTest;
let latest: ReleaseDir;

beforeAll(async () => {
  app = await startAppliance();
  latest = await makeRelease("9.0.0-a");
  const first = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(latest)).done;
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
    latest = await makeRelease("9.0.0-b");
    const run = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(latest), {
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

  // A test install runs the receiver as the deploy user, who must then own data_dir (install.sh says
  // "give the deploy user that directory"); made a real install later, root runs what lies there.
  test.skipIf(process.getuid?.() !== 0)(
    "not a binary another account put in releases/ (a re-push of the live release reused it unchecked)",
    async () => {
      const run = await pushLiveOverPlanted(65534); // nobody owns releases/ and what it put there
      expect(run.ranAsRoot).toBe("");
      expect(run.failed).toMatchObject({ step: "verify", code: "DEPLOY_PATH_UNSAFE" });
    },
    180_000,
  );

  test.skipIf(process.getuid?.() !== 0)(
    "not an installed copy whose bytes are not the signed ones, even root's",
    async () => {
      const run = await pushLiveOverPlanted(0);
      expect(run.ranAsRoot).toBe("");
      expect(run.failed).toMatchObject({ step: "install", code: "RELEASE_TAMPERED" });
    },
    180_000,
  );
});

/**
 * What the owner of releases/ may do: move root's directory of the live release aside and put its
 * own in its place (the manifest copied, another binary); then the deploy key pushes the live release
 * again with --force (decision 53). Everything is put back afterwards.
 */
async function pushLiveOverPlanted(owner: number) {
  const liveColor = (await proxyStatus(app.socket)).live;
  const live = readColors(app.config.paths.data)[liveColor]!.version;
  expect(live).toBe(latest.manifest.version);
  const releases = releasesDir(app.config.paths.data);
  const dir = join(releases, live);
  const marker = join(tempDir("axe-deploy-planted"), "ran-as-root");
  chownSync(releases, owner, owner);
  renameSync(dir, `${dir}.aside`);
  mkdirSync(dir);
  writeFileSync(join(dir, "manifest.json"), readFileSync(join(`${dir}.aside`, "manifest.json")));
  writeFileSync(join(dir, "axe-appliance"), `#!/bin/sh\necho "$(id -u) $*" >>"${marker}"\nexit 1\n`);
  chmodSync(join(dir, "axe-appliance"), 0o755);
  for (const name of ["", "manifest.json", "axe-appliance"]) chownSync(join(dir, name), owner, owner);
  try {
    const stream = join(tempDir("axe-stream"), "forced.stream");
    const fd = openSync(stream, "w");
    writeSync(fd, encodeReleaseHeader(latest.jws, { force: true }));
    writeSync(fd, readFileSync(latest.binary));
    closeSync(fd);
    const run = await runAppliance(app, ["deploy", "receive"], stream).done;
    expect(run.report?.ok).toBe(false);
    expect((await proxyStatus(app.socket)).live).toBe(liveColor);
    return {
      ranAsRoot: existsSync(marker) ? readFileSync(marker, "utf8") : "",
      failed: run.report?.steps.find((step) => !step.ok),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    renameSync(`${dir}.aside`, dir);
    chownSync(releases, 0, 0);
  }
}
