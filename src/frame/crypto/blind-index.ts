/**
 * Exact-match search on encrypted fields: HMAC-SHA256 under the entity's blind-index key (not its
 * PII key) over collection, field and the normalised value. Strings are compared after Unicode
 * NFC, trimming and lower-casing, so "Ann@X.com " finds "ann@x.com".
 */
import { createHmac } from "node:crypto";

export function normalise(value: unknown): string {
  return typeof value === "string" ? value.normalize("NFC").trim().toLowerCase() : JSON.stringify(value);
}

/** The term stored in records.blind: `{field}:{hmac hex}`. */
export function blindTerm(key: Uint8Array, collection: string, field: string, value: unknown): string {
  const mac = createHmac("sha256", key)
    .update(`${collection}\0${field}\0${normalise(value)}`)
    .digest("hex");
  return `${field}:${mac}`;
}
