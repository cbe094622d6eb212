/**
 * Collection definitions and the check of record values against them. Values are flat: each field
 * holds one scalar of its type, so nested or deep JSON is a type error, never a recursion. Messages
 * name fields and types, never values (a value may be PII).
 */
import { z } from "zod";
import { DataError } from "./errors.ts";
import { FIELD_NAME } from "./names.ts";

export const FIELD_TYPES = ["string", "number", "integer", "boolean", "date", "datetime"] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

export const DEFAULT_MAX_LENGTH = 4_096;
export const MAX_LENGTH_LIMIT = 65_536;
export const MAX_FIELDS = 100;
/** A whole record's values as JSON, in UTF-8 bytes. */
export const MAX_RECORD_BYTES = 256 * 1024;

/** Postgres text and jsonb cannot hold U+0000; refuse it at the boundary instead of failing in SQL. */
export const noNul = (text: string) => !text.includes("\u0000");
export const NUL_MESSAGE = "contains a NUL character (\\u0000), which cannot be stored";

export const FieldDefinition = z
  .strictObject({
    type: z.enum(FIELD_TYPES),
    required: z.boolean().default(false),
    pii: z.boolean().default(false).describe("encrypted at rest; exact-match search only"),
    searchable: z.boolean().default(false).describe("part of full-text search; not allowed with pii"),
    max_length: z
      .number()
      .int()
      .min(1)
      .max(MAX_LENGTH_LIMIT)
      .optional()
      .describe(`strings only; default ${DEFAULT_MAX_LENGTH}`),
    description: z.string().max(500).refine(noNul, NUL_MESSAGE).optional(),
  })
  .refine(
    (f) => !(f.pii && f.searchable),
    "a PII field cannot be searchable (full-text would keep it in clear); PII is found by exact match",
  )
  .refine((f) => f.max_length === undefined || f.type === "string", "max_length applies to string fields only");

export const CollectionDefinition = z.strictObject({
  description: z.string().max(1000).refine(noNul, NUL_MESSAGE).optional(),
  fields: z
    .record(
      z.string().regex(FIELD_NAME, "field names are lower case letters, digits and _, starting with a letter"),
      FieldDefinition,
    )
    .refine(
      (f) => Object.keys(f).length >= 1 && Object.keys(f).length <= MAX_FIELDS,
      `a collection has 1 to ${MAX_FIELDS} fields`,
    ),
});
export type CollectionDefinition = z.output<typeof CollectionDefinition>;
export type FieldDefinition = z.output<typeof FieldDefinition>;

export type Scalar = string | number | boolean;

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Why `value` is not a valid `field`, or undefined when it is. */
export function fieldProblem(field: FieldDefinition, value: unknown): string | undefined {
  switch (field.type) {
    case "string":
      if (typeof value !== "string") return `expected a string, got ${kind(value)}`;
      if (value.includes("\u0000")) return "contains a NUL character (\\u0000), which text fields cannot hold";
      if (value.length > (field.max_length ?? DEFAULT_MAX_LENGTH))
        return `is ${value.length} characters; at most ${field.max_length ?? DEFAULT_MAX_LENGTH} allowed`;
      return undefined;
    case "number":
      return typeof value === "number" && Number.isFinite(value)
        ? undefined
        : `expected a finite number, got ${kind(value)}`;
    case "integer":
      if (Number.isSafeInteger(value)) return undefined;
      return typeof value === "number" && Number.isInteger(value)
        ? "is outside the safe integer range (±2^53)"
        : `expected a whole number, got ${kind(value)}`;
    case "boolean":
      return typeof value === "boolean" ? undefined : `expected true or false, got ${kind(value)}`;
    case "date":
      return typeof value === "string" && DATE.test(value) && !Number.isNaN(Date.parse(value))
        ? undefined
        : "expected a date as YYYY-MM-DD";
    case "datetime":
      return typeof value === "string" && DATETIME.test(value) && !Number.isNaN(Date.parse(value))
        ? undefined
        : "expected an ISO 8601 time with zone, e.g. 2026-01-31T09:30:00Z";
  }
}

function kind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number" && !Number.isFinite(value)) return "a non-finite number";
  if (typeof value === "number") return Number.isInteger(value) ? "a number" : "a fraction";
  return `a ${typeof value}`;
}

/**
 * Checks values for a create (`patch: false`: required fields must be present) or an update
 * (`patch: true`: only the given fields, null removes an optional one). Throws one DataError
 * listing every problem.
 */
export function checkValues(
  collection: string,
  definition: CollectionDefinition,
  values: Record<string, unknown>,
  patch: boolean,
): Record<string, Scalar | null> {
  const problems: string[] = [];
  const out: Record<string, Scalar | null> = {};
  for (const [name, value] of Object.entries(values)) {
    const field = definition.fields[name];
    if (!field) {
      problems.push(`${name}: not a field of ${collection}`);
      continue;
    }
    if (value === null && patch) {
      if (field.required) problems.push(`${name}: is required and cannot be removed`);
      else out[name] = null;
      continue;
    }
    const problem = fieldProblem(field, value);
    if (problem) problems.push(`${name}: ${problem}`);
    else out[name] = value as Scalar;
  }
  if (!patch)
    for (const [name, field] of Object.entries(definition.fields))
      if (field.required && values[name] === undefined) problems.push(`${name}: is required`);
  if (problems.length)
    throw new DataError(
      "invalid_input",
      `invalid values for ${collection}: ${problems.slice(0, 10).join("; ")}`,
      `call list_collections to see ${collection}'s fields and types`,
    );
  if (Buffer.byteLength(JSON.stringify(out)) > MAX_RECORD_BYTES)
    throw new DataError(
      "too_large",
      `the record's values exceed ${MAX_RECORD_BYTES} bytes`,
      "store large documents elsewhere and keep a reference in the record",
    );
  return out;
}
