/**
 * Every tool call runs inside one transaction that first switches to the entity's own role and
 * schema (SET LOCAL ROLE, SET LOCAL search_path): a wrong query cannot see another entity's rows.
 *
 * @example
 * const rows = await withEntity(sql, "axe", (tx) => tx`select id from records`);
 */
import type postgres from "postgres";
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

/** A failure of the connection itself: postgres.js has already taken it back from the reservation. */
const lostConnection = (error: unknown) => String((error as { code?: unknown })?.code ?? "").startsWith("CONNECTION_");

export async function withEntity<T>(sql: Sql, entity: string, work: (tx: Tx) => Promise<T>): Promise<T> {
  const role = await entityRole(sql, entity);
  const schema = entitySchema(entity);
  const tx = await sql.reserve();
  let lost = false;
  try {
    // Pipelined on one reserved connection: begin, the switch and the work's first query leave
    // together and Postgres runs them in order, one round trip where sql.begin took two. If begin
    // or the switch fails, Postgres refuses what follows (aborted transaction, or the app role's
    // own lack of rights), so the work never runs outside its entity.
    const began = tx`begin`.execute();
    const switched = tx`select set_config('role', ${role}, true), set_config('search_path', ${schema}, true)`.execute();
    const result = work(tx);
    switched.catch(() => {});
    result.catch(() => {}); // if begin or the switch failed, that error is the one to report
    await began;
    await switched;
    const value = await result;
    // A statement that failed inside the work aborts the transaction even if the work caught it:
    // Postgres then answers COMMIT with ROLLBACK, and the caller must not see a success.
    const committed = await tx`commit`;
    if (committed.command !== "COMMIT") throw new Error(`transaction in entity ${entity} was rolled back: a statement in it failed`);
    return value;
  } catch (error) {
    lost = lostConnection(error);
    if (!lost) await tx`rollback`.catch((e) => void (lost = lostConnection(e)));
    throw error;
  } finally {
    if (!lost) tx.release();
  }
}

/**
 * withEntity for work that is one statement: begin, the switch, the statement and commit leave in
 * one write, so the whole transaction costs one round trip. A failed statement ends in ROLLBACK
 * (Postgres answers the queued COMMIT so), and its own error is the one thrown.
 *
 * @example
 * const [row] = await statementInEntity(sql, "axe", (tx) => tx`select id from records where id = ${id}`);
 */
export async function statementInEntity<R extends readonly postgres.MaybeRow[]>(
  sql: Sql,
  entity: string,
  statement: (tx: Tx) => postgres.PendingQuery<R>,
): Promise<postgres.RowList<R>> {
  const role = await entityRole(sql, entity);
  const schema = entitySchema(entity);
  const tx = await sql.reserve();
  const sent: Promise<unknown>[] = [];
  try {
    sent.push(tx`begin`.execute(), tx`select set_config('role', ${role}, true), set_config('search_path', ${schema}, true)`.execute());
    let query: postgres.PendingQuery<R>;
    try {
      query = statement(tx);
    } catch (error) {
      sent.push(tx`rollback`.execute()); // building it failed (bad input): end the transaction begun above
      throw error;
    }
    sent.push(query.execute(), tx`commit`.execute());
    const [, , rows, committed] = await Promise.all(sent); // rejects with the first failure in order
    if ((committed as postgres.RowList<R>).command !== "COMMIT") throw new Error(`transaction in entity ${entity} was rolled back: a statement in it failed`);
    return rows as postgres.RowList<R>;
  } finally {
    // Every message has its answer (or the connection is gone) before the connection goes back.
    const settled = await Promise.allSettled(sent);
    if (!settled.some((s) => s.status === "rejected" && lostConnection(s.reason))) tx.release();
  }
}
