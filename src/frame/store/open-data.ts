/**
 * frame's data at start-up, with the owner connection that migrated: the master key (made on a
 * fresh install, required once data keys exist), every entity of this customer from
 * customers.yaml, the app login role, and a pool that logs in as that role with a DataStore bound
 * to it. Tool calls use that pool; the owner pool is for migrations and entity creation only.
 *
 * @example
 * const data = await openFrameData(config, ownerSql, db.target);
 * createFrameApp({ ..., sql: data.sql, store: data.store, audit: data.audit });
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../../config/load.ts";
import { connect, type DatabaseTarget, type Sql } from "../../db/connect.ts";
import { DatabaseError } from "../../lib/errors.ts";
import { createSecretFileOnce, readSecretFile } from "../../lib/secret-file.ts";
import type { AuditSink } from "../audit-sink.ts";
import { DataKeyCache } from "../crypto/data-keys.ts";
import { KeyError } from "../crypto/errors.ts";
import { initMasterKey, MASTER_KEY_FILE, MasterKeyring } from "../crypto/master-key.ts";
import { postgresAuditSink } from "./audit.ts";
import { refusalTally } from "./audit-refusals.ts";
import { DataStore } from "./data-store.ts";
import { ensureAppRole, ensureEntity } from "./entities.ts";

export const APP_PASSWORD_FILE = "frame-app.password";

export interface FrameData {
  /** Logged in as the app role; hand it to the tools. */
  sql: Sql;
  audit: AuditSink;
  store: DataStore;
  /** Creates the entities of `config` that do not exist yet (a reloaded customers.yaml); returns the new ones. */
  ensureEntities(config: Config): Promise<string[]>;
  close(): Promise<void>;
}

export function masterKeyPath(config: Config): string {
  return join(config.paths.secrets, MASTER_KEY_FILE);
}

/**
 * A fresh install gets a master key; once data keys exist, a missing key file is an error, never a
 * new key, and the file must hold the key (or, mid-rotation, the next key) that wrapped them.
 */
export async function ensureMasterKey(owner: Sql, path: string): Promise<MasterKeyring> {
  if (!existsSync(path)) {
    const [row] = await owner`select count(*)::int as n from meta.data_keys`;
    if (row!.n > 0)
      throw new KeyError(
        "MASTER_KEY_MISSING",
        `${path} is missing, but ${row!.n} data keys were wrapped by it`,
        "restore master.key from backup; a new key cannot open existing data",
      );
    initMasterKey(path);
  }
  const ring = new MasterKeyring(path);
  ring.current();
  // A wrong key file stops start-up here, by name, rather than failing the first tool call.
  for (const { master_key_id } of await owner<
    { master_key_id: string }[]
  >`select distinct master_key_id from meta.data_keys`)
    ring.byId(master_key_id);
  return ring;
}

export async function openFrameData(
  config: Config,
  owner: Sql,
  ownerTarget: DatabaseTarget,
  options: { max?: number } = {},
): Promise<FrameData> {
  const ring = await ensureMasterKey(owner, masterKeyPath(config));
  const passwordFile = join(config.paths.secrets, APP_PASSWORD_FILE);
  createSecretFileOnce(passwordFile, () => `${randomBytes(24).toString("base64url")}\n`);
  const password = readSecretFile(passwordFile);
  const ensureEntities = async (wanted: Config) => {
    const created: string[] = [];
    try {
      for (const entity of wanted.customer.entities)
        if (await ensureEntity(owner, { name: entity.name, customer: wanted.customer.name }, ring))
          created.push(entity.name);
    } catch (error) {
      throw privilegeError(error);
    }
    return created;
  };
  await ensureEntities(config);
  let role: string;
  try {
    role = await ensureAppRole(owner, password);
  } catch (error) {
    throw privilegeError(error);
  }
  const target = { ...ownerTarget, user: role, password };
  const sql = connect(target, { max: options.max ?? 10 });
  // get_record and the audit batches share one pipelined connection (isPipe in with-entity.ts):
  // get_record went from ~2,500 to ~5,000 calls/s at 32 clients, p99 ~27 -> ~15 ms (decision 39).
  const pipe = connect(target, { max: 1 });
  const store = new DataStore(sql, new DataKeyCache(ring), pipe);
  const audit = refusalTally(postgresAuditSink(sql, pipe)); // anonymous refusals: one row per reason and minute
  return {
    sql,
    audit,
    store,
    ensureEntities,
    async close() {
      await audit.flush(); // audit rows of the last requests are written before the pool goes
      await Promise.all([sql.end({ timeout: 2 }), pipe.end({ timeout: 2 })]);
    },
  };
}

/** Postgres' "insufficient privilege" (42501) while making roles, as the operator can act on it; anything else as it is. */
function privilegeError(error: unknown): unknown {
  if ((error as { code?: string }).code !== "42501") return error;
  return new DatabaseError(
    "DATABASE_PRIVILEGES",
    `the database user cannot create entity roles: ${(error as Error).message}`,
    "the user in database.url needs CREATEROLE (frame makes one role per entity and an app login role)",
  );
}
