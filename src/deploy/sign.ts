/**
 * Ed25519 release signatures (jose, compact JWS over the manifest JSON). The operator keeps the
 * private key (PKCS8 PEM, 0600); every customer's machine pins the public key (SPKI PEM) from
 * customers.yaml. The header's `kid` is the key's JWK thumbprint, so "signed by another key" and
 * "signature does not match" are told apart.
 *
 * @example
 * const jws = await signManifest(manifest, readSecretFile(keyFile));
 * const verified = await verifyManifest(jws, fleet.releasePublicKey);
 */
import {
  CompactSign,
  calculateJwkThumbprint,
  compactVerify,
  decodeProtectedHeader,
  exportJWK,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  importPKCS8,
  importSPKI,
} from "jose";
import { DeployError } from "../lib/errors.ts";
import { type Manifest, parseManifest } from "./manifest.ts";

const ALG = "Ed25519";
const TYP = "axe-release+json";

export interface ReleaseKeyPair {
  privatePem: string;
  publicPem: string;
  kid: string;
}

export async function generateReleaseKeyPair(): Promise<ReleaseKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
  return {
    privatePem: await exportPKCS8(privateKey),
    publicPem: await exportSPKI(publicKey),
    kid: await keyId(publicKey),
  };
}

/**
 * A key's id: its RFC 7638 thumbprint in lower-case hex. Hex, not the thumbprint's base64url, so
 * an id never starts with "-" and reads like a flag (`--kid -x...`) or gets cut at an underscore.
 */
async function keyId(publicKey: CryptoKey): Promise<string> {
  return hexId(await calculateJwkThumbprint(await exportJWK(publicKey)));
}

function hexId(base64urlThumbprint: string): string {
  return Buffer.from(base64urlThumbprint, "base64url").toString("hex");
}

/** The kid of an SPKI PEM public key. */
export async function publicKeyId(publicPem: string): Promise<string> {
  return keyId(await importPublic(publicPem));
}

async function importPublic(publicPem: string): Promise<CryptoKey> {
  try {
    return await importSPKI(publicPem.trim(), ALG, { extractable: true });
  } catch (error) {
    throw new DeployError(
      "RELEASE_KEY",
      `verify: the pinned release public key is not an Ed25519 SPKI PEM: ${(error as Error).message}`,
      "fix release_public_key in customers.yaml (see `axe-appliance keys release-init`)",
    );
  }
}

/** Signs the manifest with the operator's private key (PKCS8 PEM). */
export async function signManifest(manifest: Manifest, privatePem: string): Promise<string> {
  let key: CryptoKey;
  try {
    key = await importPKCS8(privatePem.trim(), ALG, { extractable: true });
  } catch (error) {
    throw new DeployError(
      "RELEASE_KEY",
      `sign: the release key is not an Ed25519 PKCS8 PEM: ${(error as Error).message}`,
      "make one with `axe-appliance keys release-init --out DIR`",
    );
  }
  const jwk = await exportJWK(key);
  const kid = hexId(await calculateJwkThumbprint({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x! }));
  const payload = new TextEncoder().encode(JSON.stringify(parseManifest(manifest)));
  return new CompactSign(payload).setProtectedHeader({ alg: ALG, typ: TYP, kid }).sign(key);
}

/** Verifies the signature against the pinned key, then validates the manifest. */
export async function verifyManifest(jws: string, publicPem: string | undefined): Promise<Manifest> {
  if (!publicPem)
    throw new DeployError(
      "RELEASE_KEY",
      "verify: customers.yaml pins no release_public_key, so no release can be trusted",
      "add the operator's public key (from `axe-appliance keys release-init`) as release_public_key",
    );
  const key = await importPublic(publicPem);
  const expectedKid = await keyId(key);
  let header;
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    throw new DeployError(
      "RELEASE_SIGNATURE",
      "verify: the release's signed manifest is not a compact JWS",
      "rebuild the release with `npm run release`",
    );
  }
  if (header.alg !== ALG || header.typ !== TYP)
    throw new DeployError(
      "RELEASE_SIGNATURE",
      `verify: expected an ${ALG} ${TYP} signature, got alg ${String(header.alg)} typ ${String(header.typ)}`,
    );
  // releases signed before ids were hex carry the base64url thumbprint: the same key
  const signedBy = typeof header.kid === "string" && /^[\w-]{43}$/.test(header.kid) ? hexId(header.kid) : header.kid;
  if (signedBy !== expectedKid)
    throw new DeployError(
      "RELEASE_WRONG_KEY",
      `verify: the release is signed by key ${String(signedBy)}, but this machine trusts only ${expectedKid}`,
      "sign with the key whose public half is release_public_key in customers.yaml",
    );
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, key, { algorithms: [ALG] }));
  } catch {
    throw new DeployError(
      "RELEASE_SIGNATURE",
      "verify: the release signature does not match its manifest (tampered or corrupted)",
      "rebuild and sign the release again",
    );
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    throw new DeployError("RELEASE_MANIFEST", "verify: the signed manifest is not JSON");
  }
  return parseManifest(decoded);
}
