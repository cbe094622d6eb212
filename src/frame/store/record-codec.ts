/**
 * Between a record's values and its row: PII fields become ciphertexts (bound to record id and
 * field) plus blind-index terms; searchable clear fields feed the full-text vector; everything
 * else stays in `data`. Reading reverses it and refuses what it does not know: a key that is not
 * an own field of the definition, a value of the wrong type, a ciphertext that does not open (a
 * row changed outside frame). That is a DataError "unreadable" for that row alone.
 */

import { blindTerm } from "../crypto/blind-index.ts";
import type { EntityKeys } from "../crypto/data-keys.ts";
import { decryptField, encryptField } from "../crypto/pii.ts";
import { DataError } from "./errors.ts";
import { type CollectionDefinition, fieldOf, fieldProblem, type Scalar } from "./fields.ts";

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
    const field = fieldOf(definition, name);
    // checkValues let only fields through; anything else here is a bug, never stored.
    if (!field) throw new Error(`encodeValues: ${name.slice(0, 64)} is not a field of ${collection}`);
    if (field.pii) {
      out.pii[name] = encryptField(keys.pii, id, name, value);
      out.blind.push(blindTerm(keys.blind, collection, name, value));
    } else {
      out.data[name] = value;
      if (field.searchable) text.push(String(value));
    }
  }
  out.searchText = text.join("\n");
  return out;
}

/** The values of a stored row; throws DataError "unreadable" naming the record and field when they do not decode. */
export function decodeValues(
  keys: EntityKeys,
  id: string,
  definition: CollectionDefinition,
  data: unknown,
  pii: unknown,
): Record<string, Scalar> {
  const unreadable = (field: string, why: string) =>
    new DataError(
      "unreadable",
      `record ${id} cannot be read: ${field.slice(0, 64)} ${why}`,
      "it was changed outside frame; `axe-appliance doctor --records` lists such rows; delete_record still works on it",
    );
  if (!isPlainObject(data) || !isPlainObject(pii)) throw unreadable("its row", "is not a JSON object of values");
  const values: Record<string, Scalar> = {};
  for (const name of Object.keys(data)) {
    const field = fieldOf(definition, name);
    if (!field || field.pii) throw unreadable(name, field ? "is stored in clear but is a PII field" : "is not a field");
    const problem = fieldProblem({ ...field, max_length: undefined }, data[name]);
    if (problem) throw unreadable(name, problem);
    values[name] = data[name] as Scalar;
  }
  for (const name of Object.keys(pii)) {
    const field = fieldOf(definition, name);
    if (!field?.pii) throw unreadable(name, field ? "is encrypted but is not a PII field" : "is not a field");
    let value: unknown;
    try {
      value = typeof pii[name] === "string" ? decryptField(keys.pii, id, name, pii[name]) : undefined;
    } catch {
      value = undefined;
    }
    if (value === undefined)
      throw unreadable(
        name,
        "does not decrypt: the ciphertext was altered, moved from another record, or the key is wrong",
      );
    const problem = fieldProblem({ ...field, max_length: undefined }, value);
    if (problem) throw unreadable(name, problem);
    values[name] = value as Scalar;
  }
  return values;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
