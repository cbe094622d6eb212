/**
 * Collections of one entity (run inside withEntity): a name and a definition of typed fields.
 * Redefining is expand-only, like migrations: fields may be added or relaxed, never removed or
 * tightened (made required, given a lower max_length; a new field may be required only while the
 * collection holds no records), and a field's type and PII flag never change, because stored
 * records depend on all of these.
 */

import { DataError } from "./errors.ts";
import { CollectionDefinition, DEFAULT_MAX_LENGTH, type FieldDefinition, fieldNameProblem, fieldOf } from "./fields.ts";
import { COLLECTION_NAME } from "./names.ts";
import type { Tx } from "./queryable.ts";

export interface Collection {
  name: string;
  definition: CollectionDefinition;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

type Row = { name: string; definition: unknown; version: number; created_at: Date; updated_at: Date };
/** A stored definition, checked as strictly as a new one; DataError "unreadable" when it does not hold. */
export function storedDefinition(name: string, stored: unknown): CollectionDefinition {
  const definition = CollectionDefinition.safeParse(stored);
  if (!definition.success)
    throw new DataError(
      "unreadable",
      `the stored definition of collection ${name} cannot be read (${issueLine(definition.error.issues[0]!)})`,
      "an operator must repair the row in the entity's collections table",
    );
  return definition.data;
}

const parsedDefinitions = new Map<string, CollectionDefinition>();

/**
 * storedDefinition for a definition as JSON text, remembered by that text (get_record reads it with
 * every row, and parsing it cost more than a tenth of the call's CPU). The text is the whole
 * input, so a changed definition is a new entry; the map is emptied when it grows past 512.
 */
export function storedDefinitionText(name: string, text: string | null): CollectionDefinition {
  const known = text === null ? undefined : parsedDefinitions.get(text);
  if (known) return known;
  let json: unknown;
  try {
    json = text === null ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  const definition = storedDefinition(name, json);
  if (parsedDefinitions.size >= 512) parsedDefinitions.clear();
  parsedDefinitions.set(text!, definition);
  return definition;
}

function toCollection(r: Row): Collection {
  return {
    name: r.name,
    definition: storedDefinition(r.name, r.definition),
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const issueLine = (issue: { path: PropertyKey[]; message: string }) =>
  `${issue.path.map(String).join(".")}: ${issue.message}`;

export async function listCollections(tx: Tx): Promise<Collection[]> {
  const rows = await tx<Row[]>`select name, definition, version, created_at, updated_at from collections order by name`;
  return rows.map(toCollection);
}

export async function getCollection(tx: Tx, name: string): Promise<Collection> {
  const [row] = COLLECTION_NAME.test(name)
    ? await tx<Row[]>`select name, definition, version, created_at, updated_at from collections where name = ${name}`
    : [];
  if (!row)
    throw new DataError(
      "unknown_collection",
      `there is no collection named ${JSON.stringify(name.slice(0, 64))}`,
      "call list_collections for the names, or ask an admin to define_collection",
    );
  return toCollection(row);
}

/** Refuses a redefinition of an existing field that removes, retypes or tightens it. */
function checkKept(name: string, field: string, before: FieldDefinition, after: FieldDefinition | undefined): void {
  const refuse = (message: string, hint: string) => {
    throw new DataError("invalid_input", `field ${field} of ${name} ${message}`, hint);
  };
  if (!after)
    return refuse(
      "cannot be removed (records hold it)",
      "send the full definition with every existing field; add new fields beside them",
    );
  if (after.type !== before.type || after.pii !== before.pii)
    return refuse("cannot change its type or PII flag", "add a new field with the new type instead");
  const limit = (f: FieldDefinition) => (f.type === "string" ? (f.max_length ?? DEFAULT_MAX_LENGTH) : 0);
  if (limit(after) < limit(before))
    refuse(
      `cannot lower its max_length from ${limit(before)} to ${limit(after)}: stored values may be longer`,
      `keep max_length at ${limit(before)} or higher`,
    );
}

/** Creates or extends a collection; returns it with its new version. */
export async function defineCollection(tx: Tx, who: string, name: string, input: unknown): Promise<Collection> {
  if (!COLLECTION_NAME.test(name))
    throw new DataError(
      "invalid_input",
      "collection names are lower case letters, digits and _, starting with a letter, at most 63 characters",
      'e.g. "customers" or "support_tickets"',
    );
  const fields = (input as { fields?: unknown } | null)?.fields;
  // Before zod: a record schema would silently drop a key such as __proto__ and report "no fields".
  if (fields && typeof fields === "object")
    for (const field of Object.keys(fields)) {
      const problem = fieldNameProblem(field);
      if (problem)
        throw new DataError("invalid_input", `definition.fields.${field.slice(0, 64)}: ${problem}`, 'e.g. "email"');
    }
  const parsed = CollectionDefinition.safeParse(input);
  if (!parsed.success)
    throw new DataError(
      "invalid_input",
      `definition.${issueLine(parsed.error.issues[0]!)}`,
      "fields: { name: { type: string|number|integer|boolean|date|datetime, required?, pii?, searchable? } }",
    );
  const definition = parsed.data;
  const [current] = await tx<
    Row[]
  >`select name, definition, version, created_at, updated_at from collections where name = ${name} for update`;
  if (current) {
    const old = toCollection(current).definition;
    for (const [field, before] of Object.entries(old.fields))
      checkKept(name, field, before, fieldOf(definition, field));
    // Required where it was not (a new field, or an optional one): only while no record could lack it.
    const required = Object.keys(definition.fields).filter(
      (f) => definition.fields[f]!.required && !fieldOf(old, f)?.required,
    );
    if (required.length) {
      const [held] = await tx`select 1 from records where collection = ${name} and deleted_at is null limit 1`;
      if (held)
        throw new DataError(
          "invalid_input",
          `field ${required[0]} of ${name} cannot become required: records without it exist`,
          "keep it optional: redefinition may only add fields or relax them once a collection holds records",
        );
    }
    const [row] = await tx<
      Row[]
    >`update collections set definition = ${tx.json(definition)}, version = version + 1, updated_at = now(), updated_by = ${who}
      where name = ${name} returning name, definition, version, created_at, updated_at`;
    return toCollection(row!);
  }
  const [row] = await tx<Row[]>`insert into collections (name, definition, created_by, updated_by)
    values (${name}, ${tx.json(definition)}, ${who}, ${who}) on conflict (name) do nothing
    returning name, definition, version, created_at, updated_at`;
  if (!row)
    throw new DataError(
      "version_conflict",
      `collection ${name} was defined by someone else at the same moment`,
      "call list_collections to see it, then define_collection again to extend it",
    );
  return toCollection(row);
}
