/**
 * Between a record's values and its row: PII fields become ciphertexts (bound to record id and
 * field) plus blind-index terms; searchable clear fields feed the full-text vector; everything
 * else stays in `data`. Reading reverses it.
 */

import { blindTerm } from "../crypto/blind-index.ts";
import type { EntityKeys } from "../crypto/data-keys.ts";
import { decryptField, encryptField } from "../crypto/pii.ts";
import type { CollectionDefinition, Scalar } from "./fields.ts";

export interface EncodedValues {
  data: Record<string, Scalar>;
  pii: Record<string, string>;
  blind: string[];
  /** Text of the searchable clear fields, for to_tsvector. */
  searchText: string;
}

export function encodeValues(
  keys: EntityKeys,
  collection: string,
  definition: CollectionDefinition,
  id: string,
  values: Record<string, Scalar>,
): EncodedValues {
  const out: EncodedValues = { data: {}, pii: {}, blind: [], searchText: "" };
  const text: string[] = [];
  for (const [name, value] of Object.entries(values)) {
    const field = definition.fields[name];
    if (field?.pii) {
      out.pii[name] = encryptField(keys.pii, id, name, value);
      out.blind.push(blindTerm(keys.blind, collection, name, value));
    } else {
      out.data[name] = value;
      if (field?.searchable) text.push(String(value));
    }
  }
  out.searchText = text.join("\n");
  return out;
}

export function decodeValues(
  keys: EntityKeys,
  id: string,
  data: Record<string, Scalar>,
  pii: Record<string, string>,
): Record<string, Scalar> {
  const values: Record<string, Scalar> = { ...data };
  for (const [name, stored] of Object.entries(pii)) values[name] = decryptField(keys.pii, id, name, stored) as Scalar;
  return values;
}
