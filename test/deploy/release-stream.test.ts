import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hostTarget } from "../../build/compile.ts";
import type { Manifest } from "../../src/deploy/manifest.ts";
import type { ReleaseDir } from "../../src/deploy/release-dir.ts";
import { encodeReleaseHeader, readRelease } from "../../src/deploy/release-stream.ts";
import { generateReleaseKeyPair, signManifest } from "../../src/deploy/sign.ts";
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
});

const sequenced = () => release.manifest as Extract<Manifest, { sequence: number }>;

function streamOf(jws: string, body: Uint8Array): Uint8Array {
  const header = encodeReleaseHeader(jws);
  const out = new Uint8Array(header.length + body.length);
  out.set(header, 0);
  out.set(body, header.length);
  return out;
}

async function receive(
  bytes: Uint8Array,
  options: {
    maxBytes?: number;
    publicPem?: string;
    target?: string;
    floor?: { sequence: number; version: string };
    allowDowngrade?: boolean;
  } = {},
) {
  const stagingFile = join(tempDir("axe-stage"), "incoming");
  try {
    const verified = await readRelease(chunks(bytes), {
      publicPem: options.publicPem ?? publicPem,
      maxBytes: options.maxBytes ?? 1e9,
      stagingFile,
      target: options.target,
      floor: options.floor,
      allowDowngrade: options.allowDowngrade,
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
});
