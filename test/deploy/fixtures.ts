/**
 * Releases for deploy tests: one real compiled binary per test run (compiling takes a second or
 * two), signed into as many release directories as a test needs, each with its own version.
 */
import { join } from "node:path";
import { compile, gitCommit, hostTarget } from "../../build/compile.ts";
import { writeReleaseDir, type ReleaseDir } from "../../src/deploy/release-dir.ts";
import { generateReleaseKeyPair, type ReleaseKeyPair } from "../../src/deploy/sign.ts";
import type { ReleaseTarget } from "../../src/deploy/manifest.ts";
import { tempDir } from "../helpers/tmp.ts";

let binary: Promise<string> | undefined;
let keys: Promise<ReleaseKeyPair> | undefined;

/** The real axe-appliance binary for this host, compiled once per run. */
export function compiledBinary(): Promise<string> {
  binary ??= (async () => {
    const file = join(tempDir("axe-bin"), "axe-appliance");
    compile(hostTarget(), file);
    return file;
  })();
  return binary;
}

/** The operator's release key pair for this run. */
export function releaseKeys(): Promise<ReleaseKeyPair> {
  keys ??= generateReleaseKeyPair();
  return keys;
}

export async function makeRelease(version: string, options: { keys?: ReleaseKeyPair; target?: ReleaseTarget; binary?: string } = {}): Promise<ReleaseDir> {
  const pair = options.keys ?? (await releaseKeys());
  return writeReleaseDir({
    binary: options.binary ?? (await compiledBinary()),
    outDir: join(tempDir("axe-rel"), version),
    version,
    commit: gitCommit(),
    target: options.target ?? hostTarget(),
    privatePem: pair.privatePem,
  });
}

/** An async byte source that yields `data` in chunks of `size`. */
export async function* chunks(data: Uint8Array, size = 256 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}
