/**
 * The release stream that `deploy push` writes to ssh and `deploy receive` reads on stdin:
 *
 *   ["AXEOPT1\n" | uint32 length | request JSON]   only when the operator asks for something (--force)
 *   "AXEREL1\n" | uint32 big-endian length | signed manifest (compact JWS) | binary (manifest.size bytes)
 *
 * Reading verifies in order: framing, signature and key, manifest, target, not older than the
 * release floor (release-floor.ts), size bound, the caller's check (e.g. "already live"); only
 * then the binary is streamed to a staging file (never executable) while hashing, in large reads;
 * truncation, trailing bytes and a sha256 mismatch are refused. Nothing from the stream runs
 * before all of this passes. A stream that carries no byte at all (`ssh machine true`) is "no
 * release sent", not a bad release.
 *
 * The request is not signed: it may only ask for what the holder of the deploy key could do
 * anyway with a signed release (re-deploy the release that is live), never skip a check.
 */
import { createHash } from "node:crypto";
import { chmodSync, closeSync, createReadStream, fsyncSync, openSync, read, rmSync, write } from "node:fs";
import { z } from "zod";
import { DeployError } from "../lib/errors.ts";
import { type Manifest, runningTarget } from "./manifest.ts";
import { readReleaseDir } from "./release-dir.ts";
import { checkNotOlder, type ReleaseFloor } from "./release-floor.ts";
import type { StagedRelease } from "./releases.ts";
import { verifyManifest } from "./sign.ts";

export const MAGIC = new TextEncoder().encode("AXEREL1\n");
export const REQUEST_MAGIC = new TextEncoder().encode("AXEOPT1\n");
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_REQUEST_BYTES = 4096;
/** Reads and writes of the binary: large, so 111 MB is a few dozen system calls and hash updates. */
export const CHUNK_BYTES = 4 * 1024 * 1024;

/** What the operator asked for with this push (unsigned: see the module comment). */
const RequestSchema = z.strictObject({ force: z.boolean().optional() });
export type ReleaseRequest = z.output<typeof RequestSchema>;

function framed(magic: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(magic.length + 4 + body.length);
  out.set(magic, 0);
  new DataView(out.buffer).setUint32(magic.length, body.length, false);
  out.set(body, magic.length + 4);
  return out;
}

/** The bytes that precede the binary (with the request first, when it asks for anything). */
export function encodeReleaseHeader(jws: string, request: ReleaseRequest = {}): Uint8Array {
  const header = framed(MAGIC, new TextEncoder().encode(jws));
  if (!request.force) return header;
  const options = framed(REQUEST_MAGIC, new TextEncoder().encode(JSON.stringify(request)));
  const out = new Uint8Array(options.length + header.length);
  out.set(options, 0);
  out.set(header, options.length);
  return out;
}

/**
 * A file descriptor (the receiver's stdin) as large chunks: each read asks for CHUNK_BYTES, and
 * the next read is already under way while the caller hashes and writes the current chunk. Each
 * chunk is a fresh buffer, so a chunk the caller still holds is never overwritten.
 */
export async function* readAhead(fd: number, chunkBytes = CHUNK_BYTES): AsyncGenerator<Uint8Array> {
  const next = () => readChunk(fd, chunkBytes);
  let pending = next();
  for (;;) {
    const chunk = await pending;
    if (!chunk) return;
    pending = next();
    yield chunk;
  }
}

/**
 * The stream again, or undefined when it ends before its first byte: nobody sent a release
 * (`ssh machine true`, a status probe with the deploy key), which is not a bad release.
 */
export async function unlessEmpty(source: AsyncIterable<Uint8Array>): Promise<AsyncIterable<Uint8Array> | undefined> {
  const iterator = source[Symbol.asyncIterator]();
  let first = await iterator.next();
  while (!first.done && first.value.length === 0) first = await iterator.next();
  if (first.done) return undefined;
  const head = first.value;
  return (async function* () {
    yield head;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  })();
}

async function readChunk(fd: number, size: number): Promise<Uint8Array | undefined> {
  const buffer = Buffer.allocUnsafe(size);
  for (;;) {
    const got = await new Promise<number>((resolve, reject) =>
      read(fd, buffer, 0, size, null, (error, bytes) => (error ? reject(error) : resolve(bytes))),
    ).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "EAGAIN") return -1; // a non-blocking descriptor with nothing yet: ask again shortly
      throw error;
    });
    if (got === 0) return undefined;
    if (got > 0) return buffer.subarray(0, got);
    await Bun.sleep(5);
  }
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
  /** Runs once the manifest is verified, before the binary is read; throws to refuse (e.g. already live). */
  check?: (manifest: Manifest, request: ReleaseRequest) => void | Promise<void>;
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

export interface VerifiedRelease extends StagedRelease {
  /** Set when an older release was let through with allowDowngrade. */
  downgrade?: string;
  /** What the operator asked for (from the stream's request, if any). */
  request?: ReleaseRequest;
}

const refuse = (code: string, message: string, hint?: string) =>
  new DeployError(code, `verify: ${message}; nothing was installed or run`, hint);

export async function readRelease(
  source: AsyncIterable<Uint8Array>,
  options: ReadReleaseOptions,
): Promise<VerifiedRelease> {
  const reader = new ByteReader(source);
  let magic = await reader.exactly(MAGIC.length + 4);
  if (!magic) throw refuse("RELEASE_TRUNCATED", "the release stream ended before its header");
  let request: ReleaseRequest = {};
  if (startsWith(magic, REQUEST_MAGIC)) {
    request = await readRequest(reader, magic);
    magic = await reader.exactly(MAGIC.length + 4);
    if (!magic) throw refuse("RELEASE_TRUNCATED", "the release stream ended before its header");
  }
  if (!startsWith(magic, MAGIC))
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
  await options.check?.(manifest, request);
  await stageBinary(reader, manifest, options.stagingFile);
  return { manifest, jws, file: options.stagingFile, request, ...(downgrade ? { downgrade } : {}) };
}

function startsWith(bytes: Uint8Array, magic: Uint8Array): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

async function readRequest(reader: ByteReader, framing: Uint8Array): Promise<ReleaseRequest> {
  const length = new DataView(framing.buffer, framing.byteOffset).getUint32(REQUEST_MAGIC.length, false);
  if (length > MAX_REQUEST_BYTES)
    throw refuse("RELEASE_FORMAT", `the push's request claims ${length} bytes (limit ${MAX_REQUEST_BYTES})`);
  const body = await reader.exactly(length);
  if (!body) throw refuse("RELEASE_TRUNCATED", "the release stream ended inside the push's request");
  let parsed: ReturnType<typeof RequestSchema.safeParse>;
  try {
    parsed = RequestSchema.safeParse(JSON.parse(new TextDecoder().decode(body)));
  } catch {
    throw refuse("RELEASE_FORMAT", "the push's request is not JSON", "send it with `axe-appliance deploy push`");
  }
  if (!parsed.success)
    throw refuse(
      "RELEASE_FORMAT",
      `the push's request is not understood here (${parsed.error.issues[0]?.message})`,
      "this machine runs an older receiver: push without the new option, or push a release that knows it first",
    );
  return parsed.data;
}

async function stageBinary(reader: ByteReader, manifest: Manifest, file: string): Promise<void> {
  const fd = openSync(file, "w", 0o600);
  const hash = createHash("sha256");
  let received = 0;
  let ok = false;
  // The write of one chunk runs (on libuv's pool) while the next is hashed; one write at a time keeps the order.
  let writing: Promise<void> = Promise.resolve();
  try {
    for (let chunk = await reader.chunk(); chunk; chunk = await reader.chunk()) {
      received += chunk.length;
      if (received > manifest.size)
        throw refuse(
          "RELEASE_OVERSIZED",
          `the stream carries more than the ${manifest.size} bytes the manifest declares`,
        );
      hash.update(chunk);
      await writing; // the previous chunk's write (a full disk stops the read here)
      writing = writeAll(fd, chunk);
    }
    await writing;
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
    await writing.catch(() => undefined);
    closeSync(fd);
    if (!ok) rmSync(file, { force: true });
  }
  chmodSync(file, 0o600);
}

/** The stream `deploy push` would send for a release directory, for a receiver run on the machine itself. */
export async function* streamReleaseDir(dir: string): AsyncGenerator<Uint8Array> {
  const release = readReleaseDir(dir);
  yield encodeReleaseHeader(release.jws);
  for await (const chunk of createReadStream(release.binary, { highWaterMark: CHUNK_BYTES })) yield chunk as Buffer;
}

function writeAll(fd: number, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const from = (offset: number) =>
      write(fd, data, offset, data.length - offset, null, (error, written) => {
        if (error) return reject(error);
        if (offset + written < data.length) return from(offset + written);
        resolve();
      });
    from(0);
  });
}
