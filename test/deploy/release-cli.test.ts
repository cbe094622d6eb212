import { describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { hostTarget } from "../../build/compile.ts";
import { readReleaseDir } from "../../src/deploy/release-dir.ts";
import { publicKeyId, verifyManifest } from "../../src/deploy/sign.ts";
import { REPO, runCli } from "../helpers/cli.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("keys release-init and npm run release", () => {
  test("a key pair is made once; a release built with it verifies against the public half", async () => {
    const keys = tempDir("axe-keys");
    const init = await runCli(["keys", "release-init", "--out", keys]);
    expect(init.stderr).toBe("");
    expect(init.code).toBe(0);
    expect(statSync(join(keys, "release.key")).mode & 0o777).toBe(0o600);
    const publicPem = readFileSync(join(keys, "release.pub"), "utf8");
    expect(init.stdout).toContain("release_public_key: |\n  -----BEGIN PUBLIC KEY-----");
    expect(init.stdout).toContain(`key id ${await publicKeyId(publicPem)}`);

    // a key error (exit 5), not "deploy failed" (6)
    const again = await runCli(["keys", "release-init", "--out", keys]);
    expect(again.code).toBe(5);
    expect(again.stderr).toContain("never overwritten");

    const out = join(tempDir("axe-release"), "r");
    const build = Bun.spawnSync(
      [process.execPath, join(REPO, "build/release.ts"), "--out", out, "--version", "7.0.0-cli", "--sequence", "42"],
      {
        cwd: REPO,
        env: { ...process.env, AXE_RELEASE_KEY_FILE: join(keys, "release.key") },
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    expect(build.exitCode).toBe(0);
    const release = readReleaseDir(out);
    const manifest = await verifyManifest(release.jws, publicPem);
    expect(manifest).toMatchObject({
      format: "axe-release/2",
      version: "7.0.0-cli",
      target: hostTarget(),
      size: statSync(release.binary).size,
      sequence: 42,
    });
    expect(build.stdout.toString()).toContain("sequence 42");
    expect(manifest.sha256).toBe(new Bun.CryptoHasher("sha256").update(readFileSync(release.binary)).digest("hex"));

    const noKey = Bun.spawnSync([process.execPath, join(REPO, "build/release.ts"), "--out", out], {
      cwd: REPO,
      env: { ...process.env, AXE_RELEASE_KEY_FILE: "" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(noKey.exitCode).toBe(2);
    expect(noKey.stderr.toString()).toContain("no release key");
  }, 180_000); // it compiles a release: 5 s alone, 29 s at load 16
});
