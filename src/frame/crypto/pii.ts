/**
 * PII field values, encrypted in the application: AES-256-GCM under the entity's PII data key,
 * with the record id and field name as associated data, so a ciphertext moved to another record
 * or field no longer opens. Stored as "v1." + base64(iv | ciphertext | tag).
 */
import { open, seal } from "./aead.ts";
import { KeyError } from "./errors.ts";

const PREFIX = "v1.";
const context = (recordId: string, field: string) => `axe-appliance pii\0${recordId}\0${field}`;

export function encryptField(key: Uint8Array, recordId: string, field: string, value: unknown): string {
  return PREFIX + seal(key, Buffer.from(JSON.stringify(value), "utf8"), context(recordId, field)).toString("base64");
}

export function decryptField(key: Uint8Array, recordId: string, field: string, stored: string): unknown {
  const plain = stored.startsWith(PREFIX)
    ? open(key, Buffer.from(stored.slice(PREFIX.length), "base64"), context(recordId, field))
    : undefined;
  if (!plain)
    throw new KeyError(
      "PII_DECRYPT",
      `field ${field} of record ${recordId} does not decrypt: the ciphertext was altered, moved from another record, or the data key is wrong`,
      "restore the record from backup; check that master.key and meta.data_keys come from the same machine",
    );
  return JSON.parse(plain.toString("utf8"));
}
