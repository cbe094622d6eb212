/**
 * Search inside one collection: full text over its searchable clear fields, exact filters (clear
 * fields by JSON containment, PII fields by their blind-index term), in insertion order with an
 * opaque cursor and a hard page limit.
 */

import { blindTerm } from "../crypto/blind-index.ts";
import type { EntityKeys } from "../crypto/data-keys.ts";
import { getCollection } from "./collections.ts";
import { DataError } from "./errors.ts";
import { fieldOf, fieldProblem, type Scalar } from "./fields.ts";
import type { Tx } from "./queryable.ts";
import { RECORD_COLUMNS, type RecordOut, type RecordRow, toRecord } from "./records.ts";

export const MAX_PAGE = 100;
export const DEFAULT_PAGE = 20;
export const MAX_QUERY_LENGTH = 500;

export interface SearchInput {
  collection: string;
  query?: string;
  filters?: Record<string, unknown>;
  limit?: number;
  cursor?: string;
}

export interface SearchPage {
  records: RecordOut[];
  /** Rows of this page that do not decode (changed outside frame): reported here, never failing the page. */
  unreadable: Array<{ id: string; problem: string }>;
  /** Pass back as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
}

const encodeCursor = (pos: number) => Buffer.from(`pos:${pos}`).toString("base64url");

function decodeCursor(cursor: string): number {
  const match = /^pos:(\d{1,18})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (!match)
    throw new DataError(
      "invalid_input",
      "cursor is not one this server gave out",
      "pass the nextCursor of the previous page unchanged, or omit it to start over",
    );
  return Number(match[1]);
}

export async function searchRecords(tx: Tx, keys: EntityKeys, input: SearchInput): Promise<SearchPage> {
  const { name, definition } = await getCollection(tx, input.collection);
  const limit = Math.min(Math.max(1, input.limit ?? DEFAULT_PAGE), MAX_PAGE);
  const after = input.cursor ? decodeCursor(input.cursor) : 0;
  const query = input.query?.trim();
  if (query?.includes("\u0000"))
    throw new DataError("invalid_input", "query contains a NUL character (\\u0000)", "remove it and search again");
  if (query && query.length > MAX_QUERY_LENGTH)
    throw new DataError(
      "invalid_input",
      `query is longer than ${MAX_QUERY_LENGTH} characters`,
      "search with fewer words",
    );
  if (query && !Object.values(definition.fields).some((f) => f.searchable))
    throw new DataError(
      "invalid_input",
      `collection ${name} has no searchable fields, so a full-text query cannot match`,
      "use filters for exact values, or ask an admin to mark fields searchable",
    );

  const clear: Record<string, Scalar> = {};
  const blind: string[] = [];
  const problems: string[] = [];
  for (const [field, value] of Object.entries(input.filters ?? {})) {
    const def = fieldOf(definition, field);
    const problem = def ? fieldProblem({ ...def, max_length: undefined }, value) : `not a field of ${name}`;
    if (problem) problems.push(`${field}: ${problem}`);
    else if (def!.pii) blind.push(blindTerm(keys.blind, name, field, value));
    else clear[field] = value as Scalar;
  }
  if (problems.length)
    throw new DataError(
      "invalid_input",
      `invalid filters: ${problems.slice(0, 10).join("; ")}`,
      `filters are exact values of ${name}'s fields; call list_collections for them`,
    );

  const rows = await tx<(RecordRow & { pos: string })[]>`
    select ${tx(RECORD_COLUMNS)}, pos from records
    where collection = ${name} and deleted_at is null and pos > ${after}
      ${query ? tx`and search @@ websearch_to_tsquery('simple', ${query})` : tx``}
      ${Object.keys(clear).length ? tx`and data @> ${tx.json(clear)}` : tx``}
      ${blind.length ? tx`and blind @> ${blind}::text[]` : tx``}
    order by pos
    limit ${limit + 1}`;
  const page = rows.slice(0, limit);
  const records: RecordOut[] = [];
  const unreadable: SearchPage["unreadable"] = [];
  for (const row of page) {
    try {
      records.push(toRecord(keys, definition, row));
    } catch (error) {
      if (!(error instanceof DataError)) throw error;
      unreadable.push({ id: row.id, problem: error.message });
    }
  }
  return {
    records,
    unreadable,
    ...(rows.length > limit ? { nextCursor: encodeCursor(Number(page.at(-1)!.pos)) } : {}),
  };
}
