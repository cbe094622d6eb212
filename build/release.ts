/**
 * npm run release [-- --out DIR] [--version V] [--target T] [--key-file FILE] [--sequence N]
 * Compiles the binary and writes a signed release directory: axe-appliance, release.jws (the
 * Ed25519-signed manifest: version, sha256, size, git commit, target, build time, sequence) and
 * manifest.json. The sequence orders releases for the machines, which refuse an older one than
 * they have run: by default the build time as digits (20261130072630), so it grows with every
 * release signed on a clock that does not go back; --sequence N sets it. The private key is read from the file named by --key-file or
 * $AXE_RELEASE_KEY_FILE (0600); key material never goes on the command line.
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { RELEASE_TARGETS, type ReleaseTarget, releaseSequence } from "../src/deploy/manifest.ts";
import { writeReleaseDir } from "../src/deploy/release-dir.ts";
import { readSecretFile } from "../src/lib/secret-file.ts";
import { compile, gitCommit, hostTarget } from "./compile.ts";

const root = resolve(import.meta.dir, "..");

/** 0.1.0+20261125021900.abc123def456: package version, build time, commit. */
export function defaultVersion(commit: string, at = new Date()): string {
  const stamp = at.toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return `${pkg.version}+${stamp}.${commit.replace(/[^0-9A-Za-z]/g, "").slice(0, 12)}`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      version: { type: "string" },
      target: { type: "string" },
      "key-file": { type: "string" },
      sequence: { type: "string" },
    },
    strict: true,
  });
  const keyFile = values["key-file"] ?? process.env.AXE_RELEASE_KEY_FILE;
  if (!keyFile) {
    console.error(
      "error: no release key: pass --key-file FILE or set AXE_RELEASE_KEY_FILE\nhint: make one with `axe-appliance keys release-init --out DIR`",
    );
    process.exit(2);
  }
  const target = (values.target ?? hostTarget()) as ReleaseTarget;
  if (!RELEASE_TARGETS.includes(target)) {
    console.error(`error: --target must be one of ${RELEASE_TARGETS.join(", ")}`);
    process.exit(2);
  }
  const sequence = values.sequence === undefined ? undefined : Number(values.sequence);
  if (sequence !== undefined && !(Number.isSafeInteger(sequence) && sequence > 0)) {
    console.error("error: --sequence must be a positive whole number");
    process.exit(2);
  }
  try {
    const privatePem = readSecretFile(resolve(keyFile));
    const commit = gitCommit();
    const version = values.version ?? defaultVersion(commit);
    const out = resolve(values.out ?? join(root, "dist", "release", version));
    const binary = join(out, "axe-appliance");
    compile(target, binary, commit);
    const release = await writeReleaseDir({
      binary,
      outDir: out,
      version,
      commit,
      target,
      privatePem,
      ...(sequence ? { sequence } : {}),
    });
    console.log(
      `release ${release.manifest.version} (${target}, ${release.manifest.size} bytes, sha256 ${release.manifest.sha256}, sequence ${releaseSequence(release.manifest)}) in ${out}`,
    );
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    process.exit(1);
  }
}
