/** search_records (reader): full text, exact filters (PII through the blind index), cursor pages. */
import { z } from "zod";
import { DEFAULT_PAGE, MAX_PAGE, MAX_QUERY_LENGTH, searchRecords } from "../store/search.ts";
import { CollectionName, inEntity, RecordShape, recordOut } from "./data-common.ts";
import { defineTool, READ_ONLY } from "./registry.ts";

export const searchRecordsTool = defineTool({
  name: "search_records",
  title: "Search records",
  description:
    'Finds records of one collection. `query` is full-text (words, "quoted phrases", -excluded) over the collection\'s ' +
    "searchable fields; `filters` maps field names to exact values (PII fields match exactly, ignoring case and outer spaces). " +
    `Returns up to \`limit\` records (default ${DEFAULT_PAGE}, at most ${MAX_PAGE}) and a next_cursor to pass back for the next page.`,
  input: z.strictObject({
    collection: CollectionName,
    query: z.string().max(MAX_QUERY_LENGTH).optional(),
    filters: z.record(z.string().max(200), z.unknown()).optional(),
    limit: z.number().int().min(1).max(MAX_PAGE).optional(),
    cursor: z.string().max(200).optional().describe("next_cursor of the previous page"),
  }),
  output: z.object({
    records: z.array(RecordShape),
    next_cursor: z.string().optional(),
    unreadable: z
      .array(z.object({ id: z.string(), problem: z.string() }))
      .optional()
      .describe("records of this page that exist but cannot be read (changed outside frame), with why"),
  }),
  annotations: READ_ONLY,
  role: "reader",
  async handler(ctx, input) {
    const page = await inEntity(ctx, (tx, keys) => searchRecords(tx, keys, input));
    return {
      records: page.records.map(recordOut),
      ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}),
      ...(page.unreadable.length ? { unreadable: page.unreadable } : {}),
    };
  },
});
