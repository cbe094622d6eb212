/**
 * Reads every record of an entity the way the tools do and lists those that do not decode (a key
 * that is not a field, a value of the wrong type, a ciphertext that does not open): rows changed
 * outside frame, which search_records reports per page and get_record refuses. Runs with the owner
 * connection, for `doctor --records`.
 *
 * @example
 * const report = await checkRecords(ownerSql, new DataKeyCache(ring), "axe");
 */
import type { Sql } from "../../db/connect.ts";
import type { DataKeyCache } from "../crypto/data-keys.ts";
import { type Collection, storedDefinition } from "./collections.ts";
import { DataError } from "./errors.ts";
import { entitySchema } from "./names.ts";
import { RECORD_COLUMNS, type RecordRow, toRecord } from "./records.ts";

export interface RecordCheck {
  entity: string;
  /** Live and deleted records read. */
  checked: number;
  /** At most the first 100 that do not decode, with why. */
  unreadable: Array<{ id: string; collection: string; problem: string }>;
}

export async function checkRecords(sql: Sql, keys: DataKeyCache, entity: string): Promise<RecordCheck> {
  const schema = entitySchema(entity);
  const entityKeys = await keys.get(sql, entity);
  const report: RecordCheck = { entity, checked: 0, unreadable: [] };
  const definitions = new Map<string, Collection["definition"] | DataError>();
  for (const c of await sql<{ name: string; definition: unknown }[]>`
    select name, definition from ${sql(`${schema}.collections`)}`) {
    try {
      definitions.set(c.name, storedDefinition(c.name, c.definition));
    } catch (error) {
      if (!(error instanceof DataError)) throw error;
      definitions.set(c.name, error);
    }
  }
  await sql<RecordRow[]>`select ${sql(RECORD_COLUMNS)} from ${sql(`${schema}.records`)} order by pos`.cursor(
    500,
    (rows) => {
      for (const row of rows) {
        report.checked++;
        const definition = definitions.get(row.collection);
        try {
          if (!definition || definition instanceof DataError)
            throw definition ?? new DataError("unreadable", `collection ${row.collection} is not defined`);
          toRecord(entityKeys, definition, row);
        } catch (error) {
          if (!(error instanceof DataError)) throw error;
          if (report.unreadable.length < 100)
            report.unreadable.push({ id: row.id, collection: row.collection, problem: error.message });
        }
      }
    },
  );
  return report;
}
