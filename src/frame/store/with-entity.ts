/**
 * Every tool call runs inside one transaction that first switches to the entity's own role and
 * schema (SET LOCAL ROLE, SET LOCAL search_path): a wrong query cannot see another entity's rows.
 *
 * @example
 * const rows = await withEntity(sql, "axe", (tx) => tx`select id from records`);
 */
import postgres from "postgres";
import type { Sql } from "../../db/connect.ts";
import { DataError } from "./errors.ts";
import { ENTITY_NAME, entitySchema } from "./names.ts";
import type { Tx } from "./queryable.ts";

const roles = new WeakMap<object, Map<string, string>>();

/** The entity's role name from meta.entities, cached per pool (entities are never renamed). */
export async function entityRole(sql: Tx, entity: string): Promise<string> {
  let known = roles.get(sql);
  if (!known) roles.set(sql, (known = new Map()));
  const cached = known.get(entity);
  if (cached) return cached;
  const [row] = ENTITY_NAME.test(entity)
    ? await sql<{ role_name: string | null }[]>`select role_name from meta.entities where name = ${entity}`
    : [];
  if (!row?.role_name)
    throw new DataError(
      "unknown_entity",
      `entity ${entity} does not exist on this appliance`,
      "an operator creates it with `axe-appliance entity create NAME`",
    );
  known.set(entity, row.role_name);
  return row.role_name;
}

/** A failure of the connection itself: postgres.js has already taken it back from the reservation. */
export const lostConnection = (error: unknown) =>
  String((error as { code?: unknown })?.code ?? "").startsWith("CONNECTION_");

/**
 * `role`, when the caller already resolved it with entityRole, saves a second lookup. `last`, when
 * given, makes one more statement from the work's result and sends it together with COMMIT: the
 * audit row of a write (store/audit.ts), so the change and its row commit together or not at all,
 * and the chain's lock (taken by the row's trigger) is held for that one round trip.
 */
export async function withEntity<T>(
  sql: Sql,
  entity: string,
  work: (tx: Tx) => Promise<T>,
  role?: string,
  last?: (tx: Tx, value: T) => postgres.PendingQuery<postgres.Row[]>,
): Promise<T> {
  role ??= await entityRole(sql, entity);
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
    const lastSent = last?.(tx, value).execute();
    const commitSent = tx`commit`.execute();
    if (lastSent) {
      commitSent.catch(() => {}); // the statement's own error is the one to report
      await lastSent.catch((error: unknown) => {
        throw new DataError(
          "not_recorded",
          `nothing was changed: the audit row of this call could not be written (${(error as Error).message})`,
          "retry once; if it fails again, ask an operator to check serve's log and run `axe-appliance audit verify`",
        );
      });
    }
    // A statement that failed inside the work aborts the transaction even if the work caught it:
    // Postgres then answers COMMIT with ROLLBACK, and the caller must not see a success.
    const committed = await commitSent;
    if (committed.command !== "COMMIT")
      throw new Error(`transaction in entity ${entity} was rolled back: a statement in it failed`);
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
 * With `pipe` (see isPipe below) the four messages go on that shared connection instead of a
 * reserved one.
 *
 * @example
 * const [row] = await statementInEntity(sql, "axe", (tx) => tx`select id from records where id = ${id}`);
 */
export async function statementInEntity<R extends readonly postgres.MaybeRow[]>(
  sql: Sql,
  entity: string,
  statement: (tx: Tx) => postgres.PendingQuery<R>,
  pipe?: Sql,
  role?: string,
): Promise<postgres.RowList<R>> {
  role ??= await entityRole(sql, entity);
  const schema = entitySchema(entity);
  if (pipe && !retired.has(pipe)) {
    if (!isPipe(pipe)) throw new Error("a pipe must be a pool of exactly one connection (connect(target, { max: 1 }))");
    return statementOnPipe(pipe, entity, role, schema, statement);
  }
  const tx = await sql.reserve();
  const sent: Promise<unknown>[] = [];
  try {
    sent.push(
      tx`begin`.execute(),
      tx`select set_config('role', ${role}, true), set_config('search_path', ${schema}, true)`.execute(),
    );
    let query: postgres.PendingQuery<R>;
    try {
      query = statement(tx);
    } catch (error) {
      sent.push(tx`rollback`.execute()); // building it failed (bad input): end the transaction begun above
      throw error;
    }
    sent.push(query.execute(), tx`commit`.execute());
    const [, , rows, committed] = await Promise.all(sent); // rejects with the first failure in order
    if ((committed as postgres.RowList<R>).command !== "COMMIT")
      throw new Error(`transaction in entity ${entity} was rolled back: a statement in it failed`);
    return rows as postgres.RowList<R>;
  } finally {
    // Every message has its answer (or the connection is gone) before the connection goes back.
    const settled = await Promise.allSettled(sent);
    if (!settled.some((s) => s.status === "rejected" && lostConnection(s.reason))) tx.release();
  }
}

/**
 * A pipe: a pool of exactly one connection that is never reserved (`connect(target, { max: 1 })`).
 * The transactions of many concurrent calls share it: their messages leave in one write and one
 * backend answers them in order, where a reserved connection per call costs a write, a wake-up
 * and a backend switch each (measured: twice the transactions per second at 45% less client CPU).
 *
 * Why it is safe: the four messages of a call are queued synchronously, one after the other, so
 * nothing of another call can fall between them; every sequence ends its own transaction (COMMIT,
 * or the ROLLBACK that Postgres answers it with after a failure); and a statement that reaches
 * Postgres outside its transaction (a connection lost halfway) runs as the app role, which reads
 * nothing.
 *
 * What a caller must keep: one short statement (a slow one holds up every call queued behind it)
 * whose building cannot throw: constant identifiers and fragments, parameters that are strings,
 * numbers, booleans, valid Dates or null. postgres.js answers a build error by rejecting the
 * connection's active query, someone else's on a shared connection, and the answers after it
 * would then go to the wrong calls. So any failure that is not Postgres's own answer retires the
 * pipe at once (its connection is dropped, every later call takes a reserved connection) and is
 * logged by the caller as the bug it is.
 */
function isPipe(sql: Sql): boolean {
  return (sql.options as { max?: number }).max === 1;
}

const retired = new WeakSet<Sql>();

async function statementOnPipe<R extends readonly postgres.MaybeRow[]>(
  pipe: Sql,
  entity: string,
  role: string,
  schema: string,
  statement: (tx: Tx) => postgres.PendingQuery<R>,
): Promise<postgres.RowList<R>> {
  const query = statement(pipe); // a statement that cannot even be made throws here, before anything is sent
  const sent = [
    pipe`begin`.execute(),
    pipe`select set_config('role', ${role}, true), set_config('search_path', ${schema}, true)`.execute(),
    query.execute(),
    pipe`commit`.execute(),
  ] as const;
  try {
    const [, , rows, committed] = await Promise.all(sent); // rejects with the first failure in order
    if (committed.command !== "COMMIT")
      throw new Error(`transaction in entity ${entity} was rolled back: a statement in it failed`);
    return rows;
  } catch (error) {
    if (!(error instanceof postgres.PostgresError) && !lostConnection(error) && !retired.has(pipe)) {
      retired.add(pipe);
      void pipe.end({ timeout: 0 }).catch(() => {});
    }
    throw error;
  }
}
