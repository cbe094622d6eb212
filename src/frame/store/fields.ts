/**
 * Collection definitions and the check of record values against them. Values are flat: each field
 * holds one scalar of its type, so nested or deep JSON is a type error, never a recursion. Messages
 * name fields and types, never values (a value may be PII). Fields are looked up as own properties
 * only (`fieldOf`): a name such as `constructor` or `toString` must never find Object.prototype's.
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

/**
 * Names a field may not have: every member of Object.prototype (`__proto__`, `constructor`,
 * `toString`, `valueOf`, ...) and `prototype`, so no plain-object lookup anywhere can mistake one
 * for a field.
 */
export const RESERVED_FIELD_NAMES: ReadonlySet<string> = new Set([
  ...Object.getOwnPropertyNames(Object.prototype),
  "prototype",
]);

/** The field `name` of `definition`, an own property only; undefined for anything else. */
export function fieldOf(definition: CollectionDefinition, name: string): FieldDefinition | undefined {
  return Object.hasOwn(definition.fields, name) ? definition.fields[name] : undefined;
}

/** Why `name` cannot name a field, or undefined when it can. */
export function fieldNameProblem(name: string): string | undefined {
  if (RESERVED_FIELD_NAMES.has(name))
    return `${name} is a reserved name (a member of JavaScript's Object.prototype); choose another field name`;
  if (!FIELD_NAME.test(name)) return "field names are lower case letters, digits and _, starting with a letter";
  return undefined;
}

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
      z.string().superRefine((name, ctx) => {
        const problem = fieldNameProblem(name);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }),
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

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(?:Z|([+-])(\d{2}):(\d{2}))$/;

/** A day that exists: years 0001-9999 (what Postgres and JavaScript both read the same way), real months and days. */
function isCalendarDay(year: number, month: number, day: number): boolean {
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const date = new Date(Date.UTC(2000, month - 1, day));
  date.setUTCFullYear(year);
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** YYYY-MM-DD naming a day that exists (2026-02-30 does not). */
export function isDate(value: string): boolean {
  const m = DATE.exec(value);
  return m !== null && isCalendarDay(Number(m[1]), Number(m[2]), Number(m[3]));
}

/**
 * ISO 8601 time with a zone (Z or ±hh:mm): a real day, hours 00-23, minutes and seconds 00-59,
 * and an instant inside years 0001-9999 in UTC too (an offset must not push it out of that range).
 */
export function isDateTime(value: string): boolean {
  const m = DATETIME.exec(value);
  if (!m || !isCalendarDay(Number(m[1]), Number(m[2]), Number(m[3]))) return false;
  if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59) return false;
  if (m[7] !== undefined && (Number(m[8]) > 14 || Number(m[9]) > 59)) return false;
  const year = new Date(value).getUTCFullYear();
  return year >= 1 && year <= 9999;
}

/** A string that is not well-formed UTF-16 (a lone surrogate) cannot be stored as JSON or text. */
export const SURROGATE_MESSAGE = "contains a lone UTF-16 surrogate (ill-formed text), which cannot be stored";

/** Why `value` is not a valid `field`, or undefined when it is. */
export function fieldProblem(field: FieldDefinition, value: unknown): string | undefined {
  switch (field.type) {
    case "string":
      if (typeof value !== "string") return `expected a string, got ${kind(value)}`;
      if (value.includes("\u0000")) return "contains a NUL character (\\u0000), which text fields cannot hold";
      if (!value.isWellFormed()) return SURROGATE_MESSAGE;
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
      return typeof value === "string" && isDate(value) ? undefined : "expected a date that exists, as YYYY-MM-DD";
    case "datetime":
      return typeof value === "string" && isDateTime(value)
        ? undefined
        : "expected an ISO 8601 time with zone that exists, e.g. 2026-01-31T09:30:00Z";
    default:
      // A definition this code does not know (a newer release's type, or a row changed by hand): refuse.
      return `has type ${JSON.stringify((field as { type: unknown }).type)}, which this frame does not know`;
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
    const field = fieldOf(definition, name);
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
      if (field.required && !Object.hasOwn(values, name)) problems.push(`${name}: is required`);
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
