/**
 * Collections of one entity (run inside withEntity): a name and a definition of typed fields.
 * Redefining is expand-only, like migrations: fields may be added or relaxed, never removed, and a
 * field's type and PII flag never change, because stored records depend on both.
 */

import { DataError } from "./errors.ts";
import { CollectionDefinition } from "./fields.ts";
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
const toCollection = (r: Row): Collection => ({
  name: r.name,
  definition: CollectionDefinition.parse(r.definition),
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

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

/** Creates or extends a collection; returns it with its new version. */
export async function defineCollection(tx: Tx, who: string, name: string, input: unknown): Promise<Collection> {
  if (!COLLECTION_NAME.test(name))
    throw new DataError(
      "invalid_input",
      "collection names are lower case letters, digits and _, starting with a letter, at most 63 characters",
      'e.g. "customers" or "support_tickets"',
    );
  const parsed = CollectionDefinition.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DataError(
      "invalid_input",
      `definition.${issue.path.join(".")}: ${issue.message}`,
      "fields: { name: { type: string|number|integer|boolean|date|datetime, required?, pii?, searchable? } }",
    );
  }
  const definition = parsed.data;
  const [current] = await tx<
    Row[]
  >`select name, definition, version, created_at, updated_at from collections where name = ${name} for update`;
  if (current) {
    const old = CollectionDefinition.parse(current.definition);
    for (const [field, before] of Object.entries(old.fields)) {
      const after = definition.fields[field];
      if (!after)
        throw new DataError(
          "invalid_input",
          `field ${field} of ${name} cannot be removed (records hold it)`,
          "send the full definition with every existing field; add new fields beside them",
        );
      if (after.type !== before.type || after.pii !== before.pii)
        throw new DataError(
          "invalid_input",
          `field ${field} of ${name} cannot change its type or PII flag`,
          "add a new field with the new type instead",
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
