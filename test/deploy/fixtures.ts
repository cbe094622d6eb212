/**
 * Releases for deploy tests: one real compiled binary per test run (compiling takes a second or
 * two), signed into as many release directories as a test needs, each with its own version.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { compile, gitCommit, hostTarget } from "../../build/compile.ts";
import type { ReleaseTarget } from "../../src/deploy/manifest.ts";
import { type ReleaseDir, writeReleaseDir } from "../../src/deploy/release-dir.ts";
import { generateReleaseKeyPair, type ReleaseKeyPair } from "../../src/deploy/sign.ts";
import { tempDir } from "../helpers/tmp.ts";

let binary: Promise<string> | undefined;
/** The commit baked into the binary (others commit while tests run: ask git once). */
let bakedCommit = "";
let keys: Promise<ReleaseKeyPair> | undefined;

/** The real axe-appliance binary for this host, compiled once per run. */
export async function compiledBinary(): Promise<string> {
  // the run's temp dirs may be removed between test files: compile again when it is gone
  if (binary && !existsSync(await binary.catch(() => ""))) binary = undefined;
  binary ??= (async () => {
    const file = join(tempDir("axe-bin"), "axe-appliance");
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
  options: { keys?: ReleaseKeyPair; target?: ReleaseTarget; binary?: string } = {},
): Promise<ReleaseDir> {
  const pair = options.keys ?? (await releaseKeys());
  const compiled = await compiledBinary();
  return writeReleaseDir({
    binary: options.binary ?? compiled,
    outDir: join(tempDir("axe-rel"), version),
    version,
    commit: bakedCommit,
    target: options.target ?? hostTarget(),
    privatePem: pair.privatePem,
  });
}

/** An async byte source that yields `data` in chunks of `size`. */
export async function* chunks(data: Uint8Array, size = 256 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}
