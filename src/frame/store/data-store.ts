/**
 * What the data tools use: the app pool plus the data-key cache. `run` loads the entity's keys
 * (from meta, as the app role), then does the work in one transaction as the entity's role.
 * serve makes one DataStore and hands it to every tool call in its ToolContext.
 *
 * @example
 * const store = new DataStore(sql, new DataKeyCache(new MasterKeyring(keyPath)));
 * const record = await store.run("axe", (tx, keys) => getRecord(tx, keys, id));
 */
import type postgres from "postgres";
import type { Sql } from "../../db/connect.ts";
import type { DataKeyCache, EntityKeys } from "../crypto/data-keys.ts";
import type { TransactionAudit } from "./audit.ts";
import { storedDefinitionText } from "./collections.ts";
import type { CollectionDefinition } from "./fields.ts";
import type { Tx } from "./queryable.ts";
import { entityRole, statementInEntity, withEntity } from "./with-entity.ts";

export class DataStore {
  /** Collection definitions by entity and name, with the version they were read at. */
  private readonly definitions = new Map<string, { version: number; definition: CollectionDefinition }>();

  constructor(
    readonly sql: Sql,
    readonly keys: DataKeyCache,
    /** A one-connection pool for `statement` (with-entity.ts, isPipe); without it each call reserves a connection. */
    readonly pipe?: Sql,
  ) {}

  /**
   * With `audit` (a write), its row is the transaction's last statement, sent with COMMIT, and
   * `subject` names what the write changed (record id and version, collection and version).
   */
  async run<T>(
    entity: string,
    work: (tx: Tx, keys: EntityKeys) => Promise<T>,
    audit?: { row: TransactionAudit; subject?: (value: T) => Record<string, unknown> },
  ): Promise<T> {
    const role = await entityRole(this.sql, entity); // unknown entity: a clear error before any key lookup
    const keys = await this.keys.get(this.sql, entity);
    if (!audit) return withEntity(this.sql, entity, (tx) => work(tx, keys), role);
    const value = await withEntity(
      this.sql,
      entity,
      (tx) => work(tx, keys),
      role,
      (tx, result) => audit.row.insert(tx, audit.subject?.(result)),
    );
    audit.row.committed = true;
    return value;
  }

  /**
   * Read work that is one statement: sent whole in one round trip (statementInEntity), on the pipe
   * when there is one, then `read` decodes. The statement must be short and one whose building
   * cannot throw (see isPipe in with-entity.ts).
   */
  async statement<R extends readonly postgres.MaybeRow[], T>(
    entity: string,
    statement: (tx: Tx) => postgres.PendingQuery<R>,
    read: (rows: R, keys: EntityKeys) => T | Promise<T>,
  ): Promise<T> {
    const role = await entityRole(this.sql, entity);
    const keys = await this.keys.get(this.sql, entity);
    return await read(await statementInEntity(this.sql, entity, statement, this.pipe, role), keys);
  }

  /**
   * The definition of `collection` at `version` (what a row's statement read beside it): from
   * memory when that version was read before, else one more statement. get_record reads only the
   * version with its row, since sending the whole definition every time cost Postgres more.
   */
  async definition(entity: string, collection: string, version: number | null): Promise<CollectionDefinition> {
    const key = `${entity}\0${collection}`;
    const known = this.definitions.get(key);
    if (known && known.version === version) return known.definition;
    const row = await this.statement(
      entity,
      (tx) =>
        tx<{ definition: string; version: number }[]>`
          select definition::text as definition, version from collections where name = ${collection}`,
      (rows) => rows[0],
    );
    const definition = storedDefinitionText(collection, row?.definition ?? null);
    if (this.definitions.size >= 1024) this.definitions.clear();
    this.definitions.set(key, { version: row!.version, definition });
    return definition;
  }
}
