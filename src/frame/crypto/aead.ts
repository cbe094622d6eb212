/** AES-256-GCM with associated data: iv (12) | ciphertext | tag (16), as one buffer. */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

const IV = 12;
const TAG = 16;

export function seal(key: Uint8Array, plaintext: Uint8Array, associated: string): Buffer {
  const iv = randomBytes(IV);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(associated, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

/** Returns the plaintext, or undefined when the key, the associated data or the bytes are wrong. */
export function open(key: Uint8Array, sealed: Uint8Array, associated: string): Buffer | undefined {
  if (sealed.length < IV + TAG) return undefined;
  const buffer = Buffer.from(sealed);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, buffer.subarray(0, IV));
    decipher.setAAD(Buffer.from(associated, "utf8"));
    decipher.setAuthTag(buffer.subarray(buffer.length - TAG));
    return Buffer.concat([decipher.update(buffer.subarray(IV, buffer.length - TAG)), decipher.final()]);
  } catch {
    return undefined;
  }
}
