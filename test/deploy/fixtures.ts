/**
 * Releases for deploy tests: one real compiled binary per test run (compiling takes a second or
 * two), signed into as many release directories as a test needs, each with its own version.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compile, gitCommit, hostTarget } from "../../build/compile.ts";
import { LEGACY_RELEASE_FORMAT, type Manifest, type ReleaseTarget } from "../../src/deploy/manifest.ts";
import { JWS_NAME, MANIFEST_NAME, type ReleaseDir, writeReleaseDir } from "../../src/deploy/release-dir.ts";
import { generateReleaseKeyPair, type ReleaseKeyPair, signManifest } from "../../src/deploy/sign.ts";
import { tempDir } from "../helpers/tmp.ts";

let binary: Promise<string> | undefined;
/** The commit baked into the binary (others commit while tests run: ask git once). */
let bakedCommit = "";
let keys: Promise<ReleaseKeyPair> | undefined;

/** The real axe-appliance binary for this host, compiled once per run. */
export async function compiledBinary(): Promise<string> {
  // run-scoped, but a test may remove it: compile again when it is gone
  if (binary && !existsSync(await binary.catch(() => ""))) binary = undefined;
  binary ??= (async () => {
    const file = join(tempDir("axe-bin", { scope: "run" }), "axe-appliance");
    bakedCommit = gitCommit();
    compile(hostTarget(), file, bakedCommit);
    return file;
  })();
  return binary;
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
  const compiled = options.binary === undefined ? await compiledBinary() : undefined;
  const release = await writeReleaseDir({
    binary: options.binary ?? compiled!,
    outDir: join(tempDir("axe-rel"), version),
    version,
    commit: compiled === undefined ? gitCommit() : bakedCommit,
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
