/** create_record, get_record, update_record (writer; expected version), delete_record (writer; soft, destructive). */
import { z } from "zod";
import { createRecord, deleteRecord, readRecord, selectRecord, updateRecord } from "../store/records.ts";
import {
  CollectionName,
  InputValues,
  inEntity,
  inEntityStatement,
  RecordId,
  RecordShape,
  recordOut,
  Version,
  WRITE,
} from "./data-common.ts";
import { defineTool, READ_ONLY } from "./registry.ts";

/** What a record write changed, for its audit row: ids and versions only, never values. */
const recordSubject = (r: { id: string; version: number }) => ({ record: r.id, version: r.version });

export const createRecordTool = defineTool({
  name: "create_record",
  title: "Create a record",
  description:
    "Adds a record to a collection of your entity. `values` maps field names to values of the field's type " +
    "(list_collections shows them); required fields must be present. Returns the record with its id and version 1.",
  input: z.strictObject({ collection: CollectionName, values: InputValues.describe("field name to value") }),
  output: RecordShape,
  annotations: WRITE,
  role: "writer",
  async handler(ctx, input) {
    return recordOut(
      await inEntity(
        ctx,
        (tx, keys) => createRecord(tx, keys, ctx.principal.id, input.collection, input.values),
        recordSubject,
      ),
    );
  },
});

export const getRecordTool = defineTool({
  name: "get_record",
  title: "Get a record",
  description: "Returns one record of your entity by id, with every value (PII decrypted) and its current version.",
  input: z.strictObject({ id: RecordId }),
  output: RecordShape,
  annotations: READ_ONLY,
  role: "reader",
  async handler(ctx, input) {
    return recordOut(
      await inEntityStatement(
        ctx,
        (tx) => selectRecord(tx, input.id),
        (rows, keys) =>
          readRecord(rows, keys, input.id, (collection, version) =>
            ctx.store.definition(ctx.principal.entity, collection, version),
          ),
      ),
    );
  },
});

export const updateRecordTool = defineTool({
  name: "update_record",
  title: "Update a record",
  description:
    "Changes some values of a record. Send the version you last read as `expected_version`: if someone changed the record " +
    "since, nothing is written and you get a version_conflict (read it again, then retry). Fields not in `values` keep " +
    "their value; a null removes an optional field. The previous version stays in record_history.",
  input: z.strictObject({
    id: RecordId,
    expected_version: Version.describe("the version get_record or search_records showed"),
    values: InputValues,
  }),
  output: RecordShape,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  role: "writer",
  async handler(ctx, input) {
    return recordOut(
      await inEntity(
        ctx,
        (tx, keys) => updateRecord(tx, keys, ctx.principal.id, input.id, input.expected_version, input.values),
        recordSubject,
      ),
    );
  },
});

export const deleteRecordTool = defineTool({
  name: "delete_record",
  title: "Delete a record",
  description:
    "Deletes a record: it disappears from get_record and search_records; record_history still shows it. " +
    "Pass `expected_version` to delete only the version you reviewed.",
  input: z.strictObject({ id: RecordId, expected_version: Version.optional() }),
  output: z.object({ id: z.string(), version: z.number().int(), deleted_at: z.string() }),
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  role: "writer",
  async handler(ctx, input) {
    const deleted = await inEntity(
      ctx,
      (tx) => deleteRecord(tx, ctx.principal.id, input.id, input.expected_version),
      recordSubject,
    );
    return { id: deleted.id, version: deleted.version, deleted_at: deleted.deletedAt.toISOString() };
  },
});
