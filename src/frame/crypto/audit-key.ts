/**
 * The audit key: an Ed25519 key under secrets_dir that signs the audit chains' heads (anchors,
 * store/audit-anchor.ts). The database never sees it, so whoever can act as the database owner
 * can rewrite rows and recompute their hashes, but cannot sign a new head for them.
 *
 * - `audit.key`: the current private key (PKCS8 PEM, 0600), made by `keys init` or on first need;
 * - `audit-keys.json`: every public key that ever signed, with when it was made and retired, so
 *   anchors signed before a rotation still verify, and a retired key cannot vouch for later heads.
 *
 * @example
 * const signer = loadAuditSigner(config.paths.secrets);   // { kid, privateKey }
 * const keys = auditPublicKeys(config.paths.secrets);     // for verification
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { existsSync, renameSync } from "node:fs";
import { join } from "node:path";
import { calculateJwkThumbprint, type JWK } from "jose";
import { z } from "zod";
import { AppError } from "../../lib/errors.ts";
import { createSecretFileOnce, readSecretFile, type SecretOwner, writeSecretFile } from "../../lib/secret-file.ts";
import { KeyError } from "./errors.ts";

export const AUDIT_KEY_FILE = "audit.key";
export const AUDIT_KEYS_FILE = "audit-keys.json";

const PublicKeyEntry = z.strictObject({
  kid: z.string().min(1),
  /** SPKI PEM. */
  public: z.string().min(1),
  created: z.string(),
  /** Anchors this key signed after this time are not believed. */
  retired: z.string().optional(),
});
export type AuditPublicKey = z.infer<typeof PublicKeyEntry>;
const PublicKeyFile = z.strictObject({ keys: z.array(PublicKeyEntry) });

export interface AuditSigner {
  kid: string;
  privateKey: KeyObject;
}

const newKeyText = () => generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();

/** The JWK thumbprint (RFC 7638) of a public key: the `kid` of every anchor it signs. */
export async function auditKeyId(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(publicKey.export({ format: "jwk" }) as JWK);
}

function readPrivateKey(path: string): KeyObject {
  try {
    const key = createPrivateKey(readSecretFile(path));
    if (key.asymmetricKeyType !== "ed25519") throw new Error(`a ${key.asymmetricKeyType} key`);
    return key;
  } catch (error) {
    if (error instanceof AppError) throw error; // missing file or wrong mode: already says what to do
    throw new KeyError(
      "AUDIT_KEY_INVALID",
      `${path} is not an Ed25519 private key (PKCS8 PEM): ${(error as Error).message}`,
      "restore it from backup, or move it aside and run `axe-appliance keys rotate --audit`",
    );
  }
}

/** Every public key that signed anchors on this machine; empty before the first audit key. */
export function auditPublicKeys(secretsDir: string): AuditPublicKey[] {
  const path = join(secretsDir, AUDIT_KEYS_FILE);
  if (!existsSync(path)) return [];
  const text = readSecretFile(path);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined; // reported below as not the expected shape
  }
  const parsed = PublicKeyFile.safeParse(json);
  if (!parsed.success)
    throw new KeyError(
      "AUDIT_KEYS_INVALID",
      `${path} is not the list of audit public keys: ${parsed.error.issues[0]!.message} at ${parsed.error.issues[0]!.path.join(".") || "the top"}`,
      "restore it from backup: without it, anchors signed by earlier audit keys cannot be checked",
    );
  return parsed.data.keys;
}

function writePublicKeys(secretsDir: string, keys: AuditPublicKey[], fileOwner?: SecretOwner): void {
  writeSecretFile(join(secretsDir, AUDIT_KEYS_FILE), `${JSON.stringify({ keys }, null, 2)}\n`, fileOwner);
}

/** Adds the public half of `privateKey` to audit-keys.json unless it is there; returns its kid. */
async function register(secretsDir: string, privateKey: KeyObject, fileOwner?: SecretOwner): Promise<string> {
  const publicKey = createPublicKey(privateKey);
  const kid = await auditKeyId(publicKey);
  const keys = auditPublicKeys(secretsDir);
  if (!keys.some((k) => k.kid === kid))
    writePublicKeys(
      secretsDir,
      [
        ...keys,
        {
          kid,
          public: publicKey.export({ format: "pem", type: "spki" }).toString(),
          created: new Date().toISOString(),
        },
      ],
      fileOwner,
    );
  return kid;
}

/**
 * `keys init` (and serve on first need): makes audit.key unless it exists; never overwrites.
 * `fileOwner`: whom root makes the files for (frame.run_as, decision 79); default: us.
 */
export async function initAuditKey(
  secretsDir: string,
  fileOwner?: SecretOwner,
): Promise<{ created: boolean; kid: string }> {
  const created = createSecretFileOnce(join(secretsDir, AUDIT_KEY_FILE), newKeyText, fileOwner);
  return { created, kid: (await loadAuditSigner(secretsDir, fileOwner)).kid };
}

/** The current signing key; its public half is registered in audit-keys.json if it was not yet. */
export async function loadAuditSigner(secretsDir: string, fileOwner?: SecretOwner): Promise<AuditSigner> {
  const privateKey = readPrivateKey(join(secretsDir, AUDIT_KEY_FILE));
  return { kid: await register(secretsDir, privateKey, fileOwner), privateKey };
}

/**
 * `keys rotate --audit`: a new audit key takes over. Its public key is registered first, then
 * audit.key.next is renamed over audit.key, then the old key is marked retired (anchors it signs
 * later are refused); its private half is gone from disk. Interrupted, a rerun resumes with the
 * same next key.
 */
export async function rotateAuditKey(
  secretsDir: string,
  fileOwner?: SecretOwner,
): Promise<{ from: string; to: string }> {
  const path = join(secretsDir, AUDIT_KEY_FILE);
  if (!existsSync(path))
    throw new KeyError(
      "AUDIT_KEY_MISSING",
      `${path} does not exist, so there is no audit key to rotate`,
      "run `axe-appliance keys init` to make the first one",
    );
  const from = (await loadAuditSigner(secretsDir, fileOwner)).kid;
  createSecretFileOnce(`${path}.next`, newKeyText, fileOwner);
  const to = await register(secretsDir, readPrivateKey(`${path}.next`), fileOwner);
  renameSync(`${path}.next`, path);
  const retired = new Date().toISOString();
  writePublicKeys(
    secretsDir,
    auditPublicKeys(secretsDir).map((k) => (k.kid === from && !k.retired ? { ...k, retired } : k)),
    fileOwner,
  );
  return { from, to };
}

/** A public key from its SPKI PEM (audit-keys.json). */
export function publicKeyObject(key: AuditPublicKey): KeyObject {
  return createPublicKey(key.public);
}

/** True when the file holds a key (for status and doctor, which must not create one). */
export function hasAuditKey(secretsDir: string): boolean {
  return existsSync(join(secretsDir, AUDIT_KEY_FILE));
}
