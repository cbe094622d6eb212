/**
 * Every tool call runs inside one transaction that first switches to the entity's own role and
 * schema (SET LOCAL ROLE, SET LOCAL search_path): a wrong query cannot see another entity's rows.
 *
 * @example
 * const rows = await withEntity(sql, "axe", (tx) => tx`select id from records`);
 */
import type { Sql } from "../../db/connect.ts";
import { DataError } from "./errors.ts";
import { ENTITY_NAME, entitySchema } from "./names.ts";
import type { Queryable, Tx } from "./queryable.ts";

const roles = new WeakMap<object, Map<string, string>>();

/** The entity's role name from meta.entities, cached per pool (entities are never renamed). */
export async function entityRole(sql: Queryable, entity: string): Promise<string> {
  let known = roles.get(sql);
  if (!known) roles.set(sql, (known = new Map()));
  const cached = known.get(entity);
  if (cached) return cached;
  const [row] = ENTITY_NAME.test(entity)
    ? await sql<{ role_name: string | null }[]>`select role_name from meta.entities where name = ${entity}`
    : [];
  if (!row?.role_name) throw new DataError("unknown_entity", `entity ${entity} does not exist on this appliance`, "an operator creates it with `axe-appliance entity create NAME`");
  known.set(entity, row.role_name);
  return row.role_name;
}

export async function withEntity<T>(sql: Sql, entity: string, work: (tx: Tx) => Promise<T>): Promise<T> {
  const role = await entityRole(sql, entity);
  const schema = entitySchema(entity);
  return (await sql.begin(async (tx) => {
    // Pipelined: the switch is sent now and the work's first query right behind it on the same
    // connection, so Postgres runs them in order while we save a round trip.
    const switched = tx`select set_config('role', ${role}, true), set_config('search_path', ${schema}, true)`.execute();
    const result = work(tx);
    result.catch(() => {}); // if the switch failed, its error is the one to report
    await switched;
    return result;
  })) as T;
}
