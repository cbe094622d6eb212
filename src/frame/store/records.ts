/**
 * Records of one entity (run inside withEntity): create, get, update with an expected version,
 * soft delete, history. Every change also appends the new state to record_versions.
 */
import { randomUUID } from "node:crypto";
import type { EntityKeys } from "../crypto/data-keys.ts";
import { getCollection } from "./collections.ts";
import { DataError } from "./errors.ts";
import { type CollectionDefinition, checkValues, type Scalar } from "./fields.ts";
import type { Tx } from "./queryable.ts";
import { decodeValues, encodeValues } from "./record-codec.ts";

export interface RecordOut {
  id: string;
  collection: string;
  version: number;
  values: Record<string, Scalar>;
  createdAt: Date;
  createdBy: string;
  updatedAt: Date;
  updatedBy: string;
}

export interface RecordRow {
  id: string;
  collection: string;
  version: number;
  data: Record<string, Scalar>;
  pii: Record<string, string>;
  created_at: Date;
  created_by: string;
  updated_at: Date;
  updated_by: string;
  deleted_at: Date | null;
}

export const RECORD_COLUMNS = [
  "id",
  "collection",
  "version",
  "data",
  "pii",
  "created_at",
  "created_by",
  "updated_at",
  "updated_by",
  "deleted_at",
];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The record of a row; DataError "unreadable" (for this row only) when its values do not decode. */
export function toRecord(keys: EntityKeys, definition: CollectionDefinition, row: RecordRow): RecordOut {
  return {
    id: row.id,
    collection: row.collection,
    version: row.version,
    values: decodeValues(keys, row.id, definition, row.data, row.pii),
    createdAt: row.created_at,
    createdBy: row.created_by,
    updatedAt: row.updated_at,
    updatedBy: row.updated_by,
  };
}

const notFound = (id: string) =>
  new DataError(
    "not_found",
    `no record ${id} in this entity`,
    "check the id (search_records lists ids); a deleted record still shows in record_history",
  );

export function assertRecordId(id: string): string {
  if (!UUID.test(id))
    throw new DataError(
      "invalid_input",
      "record ids are UUIDs such as 0b7d3f21-94c6-4e1a-8f52-6a1d2c9e7b40",
      "use an id returned by create_record or search_records",
    );
  return id.toLowerCase();
}

function selectRow(tx: Tx, id: string, lock: boolean) {
  return tx<
    RecordRow[]
  >`select ${tx(RECORD_COLUMNS)} from records where id = ${assertRecordId(id)} ${lock ? tx`for update` : tx``}`;
}

/** A row with its collection's definition version, in one statement (get_record stays one round trip). */
type RowWithDefinitionVersion = RecordRow & { collection_version: number | null };

/** The definition of a collection at a version (DataStore.definition keeps them by version). */
export type DefinitionAt = (collection: string, version: number | null) => Promise<CollectionDefinition>;

function liveRow(rows: readonly RecordRow[], id: string): RecordRow {
  const [row] = rows;
  if (!row || row.deleted_at) throw notFound(id);
  return row;
}

async function loadRow(tx: Tx, id: string, lock: boolean): Promise<RecordRow> {
  return liveRow(await selectRow(tx, id, lock), id);
}

/** get_record as one statement plus decoding, for DataStore.statement (one round trip). */
export const selectRecord = (tx: Tx, id: string) =>
  tx<RowWithDefinitionVersion[]>`select ${tx(RECORD_COLUMNS)},
    (select version from collections where name = records.collection) as collection_version
    from records where id = ${assertRecordId(id)}`;
export async function readRecord(
  rows: readonly RowWithDefinitionVersion[],
  keys: EntityKeys,
  id: string,
  definitionAt: DefinitionAt,
): Promise<RecordOut> {
  const row = liveRow(rows, id) as RowWithDefinitionVersion;
  return toRecord(keys, await definitionAt(row.collection, row.collection_version), row);
}

export async function createRecord(
  tx: Tx,
  keys: EntityKeys,
  who: string,
  collection: string,
  values: Record<string, unknown>,
): Promise<RecordOut> {
  const { definition } = await getCollection(tx, collection);
  const clean = checkValues(collection, definition, values, false) as Record<string, Scalar>;
  const id = randomUUID();
  const encoded = encodeValues(keys, collection, definition, id, clean);
  const [row] = await tx<RecordRow[]>`
    insert into records (id, collection, version, data, pii, blind, search, created_by, updated_by)
    values (${id}, ${collection}, 1, ${tx.json(encoded.data)}, ${tx.json(encoded.pii)}, ${encoded.blind}::text[],
            to_tsvector('simple', ${encoded.searchText}), ${who}, ${who})
    returning ${tx(RECORD_COLUMNS)}`;
  await appendVersion(tx, row!, "create", who);
  return toRecord(keys, definition, row!);
}

export async function getRecord(tx: Tx, keys: EntityKeys, id: string): Promise<RecordOut> {
  const row = await loadRow(tx, id, false);
  return toRecord(keys, (await getCollection(tx, row.collection)).definition, row);
}

/** Applies `patch` (null removes an optional field) if the record is still at `expectedVersion`. */
export async function updateRecord(
  tx: Tx,
  keys: EntityKeys,
  who: string,
  id: string,
  expectedVersion: number,
  patch: Record<string, unknown>,
): Promise<RecordOut> {
  const row = await loadRow(tx, id, true); // waits for a concurrent writer, then sees its version
  if (row.version !== expectedVersion)
    throw new DataError(
      "version_conflict",
      `record ${row.id} is at version ${row.version}, not ${expectedVersion}: someone changed it since you read it`,
      `call get_record, re-apply your change to the current values, then update with expected_version ${row.version}`,
    );
  const { definition } = await getCollection(tx, row.collection);
  const clean = checkValues(row.collection, definition, patch, true);
  const merged: Record<string, Scalar> = toRecord(keys, definition, row).values;
  for (const [name, value] of Object.entries(clean)) {
    if (value === null) delete merged[name];
    else merged[name] = value;
  }
  const encoded = encodeValues(keys, row.collection, definition, row.id, merged);
  const [updated] = await tx<RecordRow[]>`
    update records set version = version + 1, data = ${tx.json(encoded.data)}, pii = ${tx.json(encoded.pii)},
      blind = ${encoded.blind}::text[], search = to_tsvector('simple', ${encoded.searchText}), updated_at = now(), updated_by = ${who}
    where id = ${row.id} and version = ${expectedVersion}
    returning ${tx(RECORD_COLUMNS)}`;
  await appendVersion(tx, updated!, "update", who);
  return toRecord(keys, definition, updated!);
}

/** Soft delete: the row stays (and its history), hidden from get and search. */
export async function deleteRecord(
  tx: Tx,
  who: string,
  id: string,
  expectedVersion?: number,
): Promise<{ id: string; version: number; deletedAt: Date }> {
  const row = await loadRow(tx, id, true);
  if (expectedVersion !== undefined && row.version !== expectedVersion)
    throw new DataError(
      "version_conflict",
      `record ${row.id} is at version ${row.version}, not ${expectedVersion}`,
      `call get_record to review it, then delete with expected_version ${row.version}`,
    );
  const [deleted] = await tx<RecordRow[]>`
    update records set version = version + 1, deleted_at = now(), updated_at = now(), updated_by = ${who}
    where id = ${row.id} returning ${tx(RECORD_COLUMNS)}`;
  await appendVersion(tx, deleted!, "delete", who);
  return { id: deleted!.id, version: deleted!.version, deletedAt: deleted!.deleted_at! };
}

async function appendVersion(tx: Tx, row: RecordRow, op: "create" | "update" | "delete", who: string): Promise<void> {
  await tx`insert into record_versions (record_id, version, op, data, pii, changed_by)
           values (${row.id}, ${row.version}, ${op}, ${tx.json(row.data)}, ${tx.json(row.pii)}, ${who})`;
}

export interface VersionOut {
  version: number;
  op: "create" | "update" | "delete";
  /** Absent when the version does not decode (changed outside frame): `unreadable` says why. */
  values?: Record<string, Scalar>;
  unreadable?: string;
  changedAt: Date;
  changedBy: string;
}

/** Every version of a record, oldest first, deleted records included. */
export async function recordHistory(
  tx: Tx,
  keys: EntityKeys,
  id: string,
): Promise<{ collection: string; versions: VersionOut[] }> {
  const [record] = await tx<{ collection: string }[]>`select collection from records where id = ${assertRecordId(id)}`;
  if (!record) throw notFound(id);
  const { definition } = await getCollection(tx, record.collection);
  const rows = await tx<
    {
      version: number;
      op: VersionOut["op"];
      data: Record<string, Scalar>;
      pii: Record<string, string>;
      changed_at: Date;
      changed_by: string;
    }[]
  >`
    select version, op, data, pii, changed_at, changed_by from record_versions where record_id = ${id.toLowerCase()} order by version`;
  return {
    collection: record.collection,
    versions: rows.map((r) => {
      const version = { version: r.version, op: r.op, changedAt: r.changed_at, changedBy: r.changed_by };
      try {
        return { ...version, values: decodeValues(keys, id.toLowerCase(), definition, r.data, r.pii) };
      } catch (error) {
        // a version changed outside frame is reported in its place, as search reports such a row
        if (!(error instanceof DataError)) throw error;
        return { ...version, unreadable: error.message };
      }
    }),
  };
}
