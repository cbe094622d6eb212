import { beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hostTarget } from "../../build/compile.ts";
import type { Manifest } from "../../src/deploy/manifest.ts";
import type { ReleaseDir } from "../../src/deploy/release-dir.ts";
import {
  encodeReleaseHeader,
  type ReadReleaseOptions,
  type ReleaseRequest,
  readAhead,
  readRelease,
  unlessEmpty,
} from "../../src/deploy/release-stream.ts";
import { generateReleaseKeyPair, publicKeyId, signManifest, verifyManifest } from "../../src/deploy/sign.ts";
import { DeployError } from "../../src/lib/errors.ts";
import { tempDir } from "../helpers/tmp.ts";
import { chunks, makeRelease, releaseKeys } from "./fixtures.ts";

let release: ReleaseDir;
let binary: Uint8Array;
let publicPem: string;

beforeAll(async () => {
  release = await makeRelease("1.0.0-stream");
  binary = readFileSync(release.binary);
  publicPem = (await releaseKeys()).publicPem;
}, 120_000); // the first release a worker makes compiles the binary: seconds alone, a minute under load

const sequenced = () => release.manifest as Extract<Manifest, { sequence: number }>;

function streamOf(jws: string, body: Uint8Array): Uint8Array {
  const header = encodeReleaseHeader(jws);
  const out = new Uint8Array(header.length + body.length);
  out.set(header, 0);
  out.set(body, header.length);
  return out;
}

interface ReceiveOptions {
  maxBytes?: number;
  publicPem?: string;
  target?: string;
  floor?: { sequence: number; version: string };
  allowDowngrade?: boolean;
  check?: ReadReleaseOptions["check"];
  source?: AsyncIterable<Uint8Array>;
}

async function receive(bytes: Uint8Array, options: ReceiveOptions = {}) {
  const stagingFile = join(tempDir("axe-stage"), "incoming");
  try {
    const verified = await readRelease(options.source ?? chunks(bytes), {
      publicPem: options.publicPem ?? publicPem,
      maxBytes: options.maxBytes ?? 1e9,
      stagingFile,
      target: options.target,
      floor: options.floor,
      allowDowngrade: options.allowDowngrade,
      ...(options.check ? { check: options.check } : {}),
    });
    return { verified, stagingFile };
  } catch (error) {
    // a refused release leaves nothing staged
    expect(existsSync(stagingFile)).toBe(false);
    throw error;
  }
}

async function refusal(bytes: Uint8Array, options: Parameters<typeof receive>[1] = {}): Promise<DeployError> {
  const error = await receive(bytes, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DeployError);
  return error as DeployError;
}

describe("release stream", () => {
  test("a signed release is verified and staged byte for byte, not executable", async () => {
    const { verified, stagingFile } = await receive(streamOf(release.jws, binary));
    expect(verified.manifest.version).toBe("1.0.0-stream");
    expect(verified.manifest.target).toBe(hostTarget());
    expect(readFileSync(stagingFile).equals(Buffer.from(binary))).toBe(true);
    expect(Bun.file(stagingFile).size).toBe(binary.length);
    const { mode } = await import("node:fs").then((fs) => fs.statSync(stagingFile));
    expect(mode & 0o111).toBe(0);
  });

  test("a tampered signature is refused", async () => {
    const [h, p, s] = release.jws.split(".");
    const flipped = s!.slice(0, 10) + (s![10] === "A" ? "B" : "A") + s!.slice(11);
    const error = await refusal(streamOf(`${h}.${p}.${flipped}`, binary));
    expect(error.code).toBe("RELEASE_SIGNATURE");
    expect(error.message).toContain("nothing was installed or run");
  });

  test("a manifest edited after signing is refused", async () => {
    const [h, , s] = release.jws.split(".");
    const forged = Buffer.from(JSON.stringify({ ...release.manifest, version: "9.9.9" })).toString("base64url");
    expect((await refusal(streamOf(`${h}.${forged}.${s}`, binary))).code).toBe("RELEASE_SIGNATURE");
  });

  test("a release signed by another key is refused, naming both keys", async () => {
    const stranger = await generateReleaseKeyPair();
    const jws = await signManifest(release.manifest, stranger.privatePem);
    const error = await refusal(streamOf(jws, binary));
    expect(error.code).toBe("RELEASE_WRONG_KEY");
    expect(error.message).toContain(stranger.kid);
  });

  test("a binary that does not match the signed sha256 is refused", async () => {
    const altered = new Uint8Array(binary);
    altered[altered.length - 100] = altered[altered.length - 100]! ^ 0xff;
    const error = await refusal(streamOf(release.jws, altered));
    expect(error.code).toBe("RELEASE_SHA256");
  });

  test("a truncated stream is refused, whether cut in the header or in the binary", async () => {
    const full = streamOf(release.jws, binary);
    expect((await refusal(full.subarray(0, full.length - 4096))).code).toBe("RELEASE_TRUNCATED");
    expect((await refusal(full.subarray(0, 30))).code).toBe("RELEASE_TRUNCATED");
    expect((await refusal(new Uint8Array(0))).code).toBe("RELEASE_TRUNCATED");
  });

  test("an oversized stream is refused: over the bound, or bytes past the declared size", async () => {
    const tooBig = await refusal(streamOf(release.jws, binary), { maxBytes: binary.length - 1 });
    expect(tooBig.code).toBe("RELEASE_OVERSIZED");
    const trailing = new Uint8Array(binary.length + 10);
    trailing.set(binary, 0);
    expect((await refusal(streamOf(release.jws, trailing))).code).toBe("RELEASE_OVERSIZED");
  });

  test("a release for another target is refused", async () => {
    const other = hostTarget() === "linux-x64" ? "linux-arm64" : "linux-x64";
    const error = await refusal(streamOf(release.jws, binary), { target: other });
    expect(error.code).toBe("RELEASE_TARGET");
    expect(error.message).toContain(other);
  });

  test("garbage input and a machine with no pinned key are refused", async () => {
    expect((await refusal(new TextEncoder().encode("#!/bin/sh\nrm -rf /\n"))).code).toBe("RELEASE_FORMAT");
    expect((await refusal(streamOf(release.jws, binary), { publicPem: "" })).code).toBe("RELEASE_KEY");
  });

  test("a release older than the newest that went live here is refused before the binary is read; --allow-downgrade lets it through, saying so", async () => {
    const { privatePem } = await releaseKeys();
    const older = await signManifest({ ...sequenced(), version: "0.9.0", sequence: 20261101000000 }, privatePem);
    const floor = { sequence: 20261120000000, version: "1.0.0" };
    const error = await refusal(streamOf(older, binary), { floor });
    expect(error.code).toBe("RELEASE_DOWNGRADE");
    expect(error.message).toContain("release 0.9.0 (sequence 20261101000000) is older than release 1.0.0");
    expect(error.message).toContain("nothing was installed or run");
    expect(error.hint).toContain("--allow-downgrade");

    const allowed = await receive(streamOf(older, binary), { floor, allowDowngrade: true });
    expect(allowed.verified.downgrade).toBe(
      "downgrade allowed: sequence 20261101000000 is older than 1.0.0's 20261120000000",
    );
    const same = await receive(
      streamOf(await signManifest({ ...sequenced(), sequence: floor.sequence }, privatePem), binary),
      { floor },
    );
    expect(same.verified.downgrade).toBeUndefined(); // the same sequence again (a re-push) is not older
  });

  test("a release signed before sequences (format axe-release/1) counts as sequence 0", async () => {
    const { privatePem } = await releaseKeys();
    const { sequence: _sequence, ...unsequenced } = release.manifest as typeof release.manifest & { sequence?: number };
    const legacy = await signManifest({ ...unsequenced, format: "axe-release/1" } as never, privatePem);
    const accepted = await receive(streamOf(legacy, binary)); // a machine that never ran a sequenced release
    expect(accepted.verified.manifest.format).toBe("axe-release/1");
    const error = await refusal(streamOf(legacy, binary), { floor: { sequence: 20261120000000, version: "1.0.0" } });
    expect(error.code).toBe("RELEASE_DOWNGRADE");
    expect(error.message).toContain("signed before release sequences");
  });

  test("new releases carry a sequence, by default their build time as digits; 0 is no sequence", async () => {
    expect(release.manifest.format).toBe("axe-release/2");
    expect((release.manifest as { sequence?: number }).sequence).toBe(
      Number(release.manifest.builtAt.replace(/[-:T]/g, "").slice(0, 14)),
    );
    const unsigned = { ...sequenced(), sequence: 0 };
    await expect(signManifest(unsigned, (await releaseKeys()).privatePem)).rejects.toThrow(/sequence/);
  });

  test("the push's request comes first: --force is read from it; a request this receiver does not know is refused", async () => {
    const forced = await receive(new Uint8Array(0), {
      source: chunks(concat(encodeReleaseHeader(release.jws, { force: true }), binary)),
    });
    expect(forced.verified.request).toEqual({ force: true });
    expect(readFileSync(forced.stagingFile).equals(Buffer.from(binary))).toBe(true);
    // without --force the stream is exactly the old one, so a receiver of an older release reads it
    expect(encodeReleaseHeader(release.jws, {})).toEqual(encodeReleaseHeader(release.jws));
    const plain = await receive(streamOf(release.jws, binary));
    expect(plain.verified.request).toEqual({});

    const json = new TextEncoder().encode('{"skipVerify":true}');
    const odd = concat(
      new TextEncoder().encode("AXEOPT1\n"),
      new Uint8Array([0, 0, 0, json.length]),
      json,
      encodeReleaseHeader(release.jws),
    );
    const error = await refusal(concat(odd, binary));
    expect(error.code).toBe("RELEASE_FORMAT");
    expect(error.message).toContain("request is not understood");
  });

  test("the caller's check runs once the manifest is verified, before the binary is read", async () => {
    let pulled = 0;
    async function* counted() {
      for await (const chunk of chunks(streamOf(release.jws, binary))) {
        pulled++;
        yield chunk;
      }
    }
    let seen: ReleaseRequest | undefined;
    const error = await refusal(new Uint8Array(0), {
      source: counted(),
      check: (_manifest, request) => {
        seen = request;
        throw new DeployError("RELEASE_ALREADY_LIVE", "verify: already live");
      },
    });
    expect(error.code).toBe("RELEASE_ALREADY_LIVE");
    expect(seen).toEqual({});
    expect(pulled).toBe(1); // only the chunk that held the header; the binary was never read
  });

  test("a stream with no byte at all is told apart (no release sent); any byte is passed on whole", async () => {
    expect(await unlessEmpty(chunks(new Uint8Array(0)))).toBeUndefined();
    const again = await unlessEmpty(chunks(new Uint8Array([1, 2, 3, 4, 5]), 2));
    const parts: number[] = [];
    for await (const chunk of again!) parts.push(...chunk);
    expect(parts).toEqual([1, 2, 3, 4, 5]);
  });

  test("the receiver reads its stdin in large chunks, each a buffer of its own", async () => {
    const file = join(tempDir("axe-stdin"), "stream");
    const data = new Uint8Array(9 * 1024 * 1024 + 3).map((_, i) => i % 251);
    writeFileSync(file, data);
    const fd = openSync(file, "r");
    const got: Uint8Array[] = [];
    try {
      for await (const chunk of readAhead(fd)) got.push(chunk);
    } finally {
      closeSync(fd);
    }
    expect(got.map((c) => c.length)).toEqual([4 * 1024 * 1024, 4 * 1024 * 1024, 1024 * 1024 + 3]);
    expect(new Set(got.map((c) => c.buffer)).size).toBe(3); // read-ahead never overwrites a chunk in use
    expect(Buffer.concat(got).equals(Buffer.from(data))).toBe(true);
  });
});

describe("release key ids", () => {
  test("are lower-case hex, so an id never starts with '-' and reads like a flag", async () => {
    for (let i = 0; i < 64; i++) {
      const pair = await generateReleaseKeyPair();
      expect(pair.kid).toMatch(/^[0-9a-f]{64}$/);
      expect(await publicKeyId(pair.publicPem)).toBe(pair.kid);
    }
  });

  test("a release signed before ids were hex (base64url thumbprint) still verifies against its key", async () => {
    const { CompactSign, importPKCS8 } = await import("jose");
    const pair = await releaseKeys();
    const legacyKid = Buffer.from(pair.kid, "hex").toString("base64url");
    const legacy = await new CompactSign(new TextEncoder().encode(JSON.stringify(release.manifest)))
      .setProtectedHeader({ alg: "Ed25519", typ: "axe-release+json", kid: legacyKid })
      .sign(await importPKCS8(pair.privatePem, "Ed25519"));
    expect((await verifyManifest(legacy, pair.publicPem)).version).toBe(release.manifest.version);
    const stranger = await generateReleaseKeyPair();
    const error = await verifyManifest(legacy, stranger.publicPem).catch((e: DeployError) => e);
    expect((error as DeployError).code).toBe("RELEASE_WRONG_KEY");
    expect((error as DeployError).message).toContain(`signed by key ${pair.kid}`);
  });
});

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}
