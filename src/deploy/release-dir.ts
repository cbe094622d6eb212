/**
 * A release on the operator's disk, as `npm run release` writes it: DIR/axe-appliance (the
 * binary), DIR/release.jws (the signed manifest) and DIR/manifest.json (a readable copy).
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { DeployError } from "../lib/errors.ts";
import { type Manifest, parseManifest, RELEASE_FORMAT, type ReleaseTarget, sequenceAt } from "./manifest.ts";
import { signManifest } from "./sign.ts";

export const BINARY_NAME = "axe-appliance";
export const JWS_NAME = "release.jws";
export const MANIFEST_NAME = "manifest.json";

export interface ReleaseDir {
  dir: string;
  binary: string;
  jws: string;
  manifest: Manifest;
}

/** The file's sha256, read in large chunks (a 111 MB binary is a few dozen reads, never all in memory). */
export function sha256File(file: string): string {
  const hash = createHash("sha256");
  const fd = openSync(file, "r");
  try {
    const buffer = Buffer.allocUnsafe(4 * 1024 * 1024);
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

export interface WriteReleaseOptions {
  /** A compiled binary to package (copied into outDir). */
  binary: string;
  outDir: string;
  version: string;
  commit: string;
  target: ReleaseTarget;
  privatePem: string;
  builtAt?: string;
  /** Default: the build time as digits (manifest.ts, sequenceAt). */
  sequence?: number;
}

/** Hashes the binary, signs its manifest, and writes the release directory. */
export async function writeReleaseDir(options: WriteReleaseOptions): Promise<ReleaseDir> {
  mkdirSync(options.outDir, { recursive: true });
  const binary = join(options.outDir, BINARY_NAME);
  if (options.binary !== binary) copyFileSync(options.binary, binary);
  const builtAt = options.builtAt ?? new Date().toISOString();
  const manifest = parseManifest({
    format: RELEASE_FORMAT,
    version: options.version,
    sha256: sha256File(binary),
    size: statSync(binary).size,
    commit: options.commit,
    target: options.target,
    builtAt,
    sequence: options.sequence ?? sequenceAt(new Date(builtAt)),
  });
  const jws = await signManifest(manifest, options.privatePem);
  writeFileSync(join(options.outDir, JWS_NAME), `${jws}\n`);
  writeFileSync(join(options.outDir, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`);
  return { dir: options.outDir, binary, jws, manifest };
}

/** Reads a release directory (the signature is checked by the receiver, and by push beforehand). */
export function readReleaseDir(dir: string): ReleaseDir {
  const binary = join(dir, BINARY_NAME);
  const jwsFile = join(dir, JWS_NAME);
  for (const file of [binary, jwsFile])
    if (!existsSync(file))
      throw new DeployError(
        "RELEASE_MISSING",
        `push: ${file} not found; ${dir} is not a release directory`,
        "build one with `npm run release`",
      );
  const jws = readFileSync(jwsFile, "utf8").trim();
  const payload = jws.split(".")[1] ?? "";
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    throw new DeployError(
      "RELEASE_MANIFEST",
      `push: ${jwsFile} is not a signed manifest`,
      "build the release again with `npm run release`",
    );
  }
  return { dir, binary, jws, manifest: parseManifest(decoded) };
}
