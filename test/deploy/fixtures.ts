/**
 * Releases for deploy tests: the run's one compiled binary (test/helpers/binary.ts), signed into
 * as many release directories as a test needs, each with its own version.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gitCommit, hostTarget } from "../../build/compile.ts";
import { LEGACY_RELEASE_FORMAT, type Manifest, type ReleaseTarget } from "../../src/deploy/manifest.ts";
import { JWS_NAME, MANIFEST_NAME, type ReleaseDir, writeReleaseDir } from "../../src/deploy/release-dir.ts";
import { generateReleaseKeyPair, type ReleaseKeyPair, signManifest } from "../../src/deploy/sign.ts";
import { compiledBinary as compiled } from "../helpers/binary.ts";
import { tempDir } from "../helpers/tmp.ts";

let keys: Promise<ReleaseKeyPair> | undefined;

/** The real axe-appliance binary for this host, compiled once per run (test/helpers/binary.ts). */
export async function compiledBinary(): Promise<string> {
  return compiled().path;
}

/** The operator's release key pair for this run. */
export function releaseKeys(): Promise<ReleaseKeyPair> {
  keys ??= generateReleaseKeyPair();
  return keys;
}

export async function makeRelease(
  version: string,
  options: {
    keys?: ReleaseKeyPair;
    target?: ReleaseTarget;
    /** Another binary (copied in) instead of the compiled one, for tests that never run it. */
    binary?: string;
    /** The release's sequence (default: its build time); "legacy" signs it as releases before sequences were. */
    sequence?: number | "legacy";
  } = {},
): Promise<ReleaseDir> {
  const pair = options.keys ?? (await releaseKeys());
  // a release of another binary (a test that never runs it) needs no compiled one
  const build = options.binary === undefined ? compiled() : undefined;
  const release = await writeReleaseDir({
    binary: options.binary ?? build!.path,
    outDir: join(tempDir("axe-rel"), version),
    version,
    commit: build?.commit ?? gitCommit(),
    target: options.target ?? hostTarget(),
    privatePem: pair.privatePem,
    ...(typeof options.sequence === "number" ? { sequence: options.sequence } : {}),
  });
  if (options.sequence !== "legacy") return release;
  const { sequence: _sequence, ...unsequenced } = release.manifest as Manifest & { sequence?: number };
  const manifest = { ...unsequenced, format: LEGACY_RELEASE_FORMAT } as Manifest;
  const jws = await signManifest(manifest, pair.privatePem);
  writeFileSync(join(release.dir, JWS_NAME), `${jws}\n`);
  writeFileSync(join(release.dir, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`);
  return { ...release, jws, manifest };
}

/** An async byte source that yields `data` in chunks of `size`. */
export async function* chunks(data: Uint8Array, size = 256 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}
