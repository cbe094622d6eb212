/**
 * The release stream that `deploy push` writes to ssh and `deploy receive` reads on stdin:
 *
 *   "AXEREL1\n" | uint32 big-endian length | signed manifest (compact JWS) | binary (manifest.size bytes)
 *
 * Reading verifies in order: framing, signature and key, manifest, target, not older than the
 * release floor (release-floor.ts), size bound; only then
 * the binary is streamed to a staging file (never executable) while hashing; truncation, trailing
 * bytes and a sha256 mismatch are refused. Nothing from the stream runs before all of this passes.
 */
import { createHash } from "node:crypto";
import { chmodSync, closeSync, createReadStream, fsyncSync, openSync, rmSync, writeSync } from "node:fs";
import { DeployError } from "../lib/errors.ts";
import { type Manifest, runningTarget } from "./manifest.ts";
import { readReleaseDir } from "./release-dir.ts";
import { checkNotOlder, type ReleaseFloor } from "./release-floor.ts";
import { verifyManifest } from "./sign.ts";

export const MAGIC = new TextEncoder().encode("AXEREL1\n");
const MAX_HEADER_BYTES = 64 * 1024;

/** The bytes that precede the binary. */
export function encodeReleaseHeader(jws: string): Uint8Array {
  const body = new TextEncoder().encode(jws);
  const out = new Uint8Array(MAGIC.length + 4 + body.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, body.length, false);
  out.set(body, MAGIC.length + 4);
  return out;
}

/** Buffered exact reads over an async byte source. */
class ByteReader {
  private buffered: Uint8Array = new Uint8Array(0);
  private readonly iterator: AsyncIterator<Uint8Array>;
  private done = false;
  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }
  /** Exactly n bytes, or undefined when the stream ends first. */
  async exactly(n: number): Promise<Uint8Array | undefined> {
    while (this.buffered.length < n && !this.done) await this.pull();
    if (this.buffered.length < n) return undefined;
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }
  /** Whatever comes next (buffered first), or undefined at the end. */
  async chunk(): Promise<Uint8Array | undefined> {
    if (this.buffered.length === 0 && !this.done) await this.pull();
    if (this.buffered.length === 0) return undefined;
    const out = this.buffered;
    this.buffered = new Uint8Array(0);
    return out;
  }
  private async pull(): Promise<void> {
    const next = await this.iterator.next();
    if (next.done) {
      this.done = true;
      return;
    }
    if (this.buffered.length === 0) {
      this.buffered = next.value;
      return;
    }
    const joined = new Uint8Array(this.buffered.length + next.value.length);
    joined.set(this.buffered, 0);
    joined.set(next.value, this.buffered.length);
    this.buffered = joined;
  }
}

export interface ReadReleaseOptions {
  publicPem: string | undefined;
  /** Refuse a binary larger than this (deploy.max_release_bytes). */
  maxBytes: number;
  /** Where the binary is staged (mode 0600, not executable) while it is hashed. */
  stagingFile: string;
  /** Target this machine runs (default: this process's platform-arch). */
  target?: string;
  /** The newest release that went live here: an older one is refused... */
  floor?: ReleaseFloor;
  /** ...unless this is set; the result's `downgrade` then says so, for the journal. */
  allowDowngrade?: boolean;
}

export interface VerifiedRelease {
  manifest: Manifest;
  jws: string;
  /** The staged binary, verified against manifest.sha256. */
  file: string;
  /** Set when an older release was let through with allowDowngrade. */
  downgrade?: string;
}

const refuse = (code: string, message: string, hint?: string) =>
  new DeployError(code, `verify: ${message}; nothing was installed or run`, hint);

export async function readRelease(
  source: AsyncIterable<Uint8Array>,
  options: ReadReleaseOptions,
): Promise<VerifiedRelease> {
  const reader = new ByteReader(source);
  const magic = await reader.exactly(MAGIC.length + 4);
  if (!magic) throw refuse("RELEASE_TRUNCATED", "the release stream ended before its header");
  if (!MAGIC.every((b, i) => magic[i] === b))
    throw refuse(
      "RELEASE_FORMAT",
      "the input is not an axe release stream",
      "send it with `axe-appliance deploy push`",
    );
  const length = new DataView(magic.buffer, magic.byteOffset).getUint32(MAGIC.length, false);
  if (length === 0 || length > MAX_HEADER_BYTES)
    throw refuse("RELEASE_OVERSIZED", `the signed manifest claims ${length} bytes (limit ${MAX_HEADER_BYTES})`);
  const header = await reader.exactly(length);
  if (!header) throw refuse("RELEASE_TRUNCATED", "the release stream ended inside the signed manifest");
  const jws = new TextDecoder().decode(header);
  const manifest = await verifyManifest(jws, options.publicPem).catch((error: unknown) => {
    if (error instanceof DeployError)
      throw new DeployError(error.code, `${error.message}; nothing was installed or run`, error.hint);
    throw error;
  });
  const target = options.target ?? runningTarget();
  if (manifest.target !== target)
    throw refuse(
      "RELEASE_TARGET",
      `release ${manifest.version} is built for ${manifest.target}, this machine is ${target}`,
      `build it with --target ${target}`,
    );
  const downgrade = checkNotOlder(manifest, options.floor, options.allowDowngrade);
  if (manifest.size > options.maxBytes)
    throw refuse(
      "RELEASE_OVERSIZED",
      `release ${manifest.version} is ${manifest.size} bytes, over deploy.max_release_bytes (${options.maxBytes})`,
    );
  await stageBinary(reader, manifest, options.stagingFile);
  return { manifest, jws, file: options.stagingFile, ...(downgrade ? { downgrade } : {}) };
}

async function stageBinary(reader: ByteReader, manifest: Manifest, file: string): Promise<void> {
  const fd = openSync(file, "w", 0o600);
  const hash = createHash("sha256");
  let received = 0;
  let ok = false;
  try {
    for (let chunk = await reader.chunk(); chunk; chunk = await reader.chunk()) {
      received += chunk.length;
      if (received > manifest.size)
        throw refuse(
          "RELEASE_OVERSIZED",
          `the stream carries more than the ${manifest.size} bytes the manifest declares`,
        );
      hash.update(chunk);
      writeSync(fd, chunk);
    }
    if (received < manifest.size)
      throw refuse(
        "RELEASE_TRUNCATED",
        `the stream ended after ${received} of ${manifest.size} bytes`,
        "push the release again",
      );
    const digest = hash.digest("hex");
    if (digest !== manifest.sha256)
      throw refuse("RELEASE_SHA256", `the binary's sha256 is ${digest}, the signed manifest says ${manifest.sha256}`);
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(file, { force: true });
  }
  chmodSync(file, 0o600);
}

/** The stream `deploy push` would send for a release directory, for a receiver run on the machine itself. */
export async function* streamReleaseDir(dir: string): AsyncGenerator<Uint8Array> {
  const release = readReleaseDir(dir);
  yield encodeReleaseHeader(release.jws);
  for await (const chunk of createReadStream(release.binary, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
}
