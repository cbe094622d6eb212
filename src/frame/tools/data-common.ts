/**
 * Shared by the data tools: run store work inside the caller's entity, turn store errors into tool
 * errors that say how to fix the call, and the zod shapes of records on the wire.
 */
import type postgres from "postgres";
import { z } from "zod";
import type { EntityKeys } from "../crypto/data-keys.ts";
import { DataError } from "../store/errors.ts";
import type { Tx } from "../store/queryable.ts";
import type { RecordOut } from "../store/records.ts";
import { type ToolAnnotations, type ToolContext, ToolError } from "./registry.ts";

/**
 * Runs `work` in one transaction as the caller's entity role; DataErrors become ToolErrors. In a
 * tool that changes data, the call's audit row commits in the same transaction; `subject` names
 * what changed (e.g. the record id and its new version).
 */
export async function inEntity<T>(
  ctx: ToolContext,
  work: (tx: Tx, keys: EntityKeys) => Promise<T>,
  subject?: (value: T) => Record<string, unknown>,
): Promise<T> {
  try {
    return await ctx.store.run(
      ctx.principal.entity,
      work,
      ctx.writeAudit ? { row: ctx.writeAudit, subject } : undefined,
    );
  } catch (error) {
    if (error instanceof DataError) throw new ToolError(error.reason, error.message, error.hint);
    throw error;
  }
}

/** inEntity for one read statement, sent with begin and commit in one round trip; `read` decodes its rows. */
export async function inEntityStatement<R extends readonly postgres.MaybeRow[], T>(
  ctx: ToolContext,
  statement: (tx: Tx) => postgres.PendingQuery<R>,
  read: (rows: R, keys: EntityKeys) => T | Promise<T>,
): Promise<T> {
  try {
    return await ctx.store.statement(ctx.principal.entity, statement, read);
  } catch (error) {
    if (error instanceof DataError) throw new ToolError(error.reason, error.message, error.hint);
    throw error;
  }
}

export const WRITE: ToolAnnotations = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: false,
};

export const CollectionName = z.string().min(1).max(63).describe("collection name, as list_collections shows it");
export const RecordId = z
  .string()
  .min(1)
  .max(64)
  .describe("the record's id (a UUID) from create_record or search_records");
export const Version = z
  .number()
  .int()
  .min(1)
  .max(2 ** 31 - 1);

export const Value = z.union([z.string(), z.number(), z.boolean()]);
export const Values = z.record(z.string().max(63), Value).describe("field name to value");
/** Input values: accepted loosely here, checked field by field against the collection (clear messages). */
export const InputValues = z.record(z.string().max(200), z.unknown());

export const RecordShape = z.object({
  id: z.string(),
  collection: z.string(),
  version: z.number().int(),
  values: Values,
  created_at: z.string(),
  created_by: z.string(),
  updated_at: z.string(),
  updated_by: z.string(),
});

export function recordOut(r: RecordOut): z.input<typeof RecordShape> {
  return {
    id: r.id,
    collection: r.collection,
    version: r.version,
    values: r.values,
    created_at: r.createdAt.toISOString(),
    created_by: r.createdBy,
    updated_at: r.updatedAt.toISOString(),
    updated_by: r.updatedBy,
  };
}
