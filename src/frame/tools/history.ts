/** record_history (reader): every version of a record, deleted ones included. */
import { z } from "zod";
import { recordHistory } from "../store/records.ts";
import { inEntity, Values } from "./data-common.ts";
import { defineTool, READ_ONLY } from "./registry.ts";

export const recordHistoryTool = defineTool({
  name: "record_history",
  title: "Record history",
  description:
    "Every version of one record, oldest first: what changed (create, update, delete), when, by whom, and the values at that version. " +
    "A version that was changed outside frame has no values, and `unreadable` says why.",
  input: z.strictObject({ id: z.string().min(1).max(64).describe("the record's id") }),
  output: z.object({
    id: z.string(),
    collection: z.string(),
    versions: z.array(
      z.object({
        version: z.number().int(),
        op: z.enum(["create", "update", "delete"]),
        values: Values.optional(),
        unreadable: z.string().optional(),
        changed_at: z.string(),
        changed_by: z.string(),
      }),
    ),
  }),
  annotations: READ_ONLY,
  role: "reader",
  async handler(ctx, input) {
    const history = await inEntity(ctx, (tx, keys) => recordHistory(tx, keys, input.id));
    return {
      id: input.id.toLowerCase(),
      collection: history.collection,
      versions: history.versions.map((v) => ({
        version: v.version,
        op: v.op,
        ...(v.values ? { values: v.values } : { unreadable: v.unreadable }),
        changed_at: v.changedAt.toISOString(),
        changed_by: v.changedBy,
      })),
    };
  },
});
