/**
 * Per-entity data keys: one for PII fields (AES-256-GCM), one for the blind index (HMAC). They are
 * stored in meta.data_keys wrapped by the master key, bound to their entity and purpose as
 * associated data, and unwrapped once per process. Rotating the master key re-wraps them; the data
 * keys themselves never change, so a running server's cached keys stay right through a rotation.
 */
import { randomBytes } from "node:crypto";
import type { Tx } from "../store/queryable.ts";
import { open, seal } from "./aead.ts";
import { KeyError } from "./errors.ts";
import type { MasterKey, MasterKeyring } from "./master-key.ts";

export type KeyPurpose = "pii" | "blind";
export const PURPOSES: readonly KeyPurpose[] = ["pii", "blind"];

export interface EntityKeys {
  pii: Buffer;
  blind: Buffer;
}

const wrapContext = (entity: string, purpose: KeyPurpose) => `axe-appliance data key\0${entity}\0${purpose}`;

export function wrapDataKey(master: MasterKey, entity: string, purpose: KeyPurpose, key: Uint8Array): Buffer {
  return seal(master.key, key, wrapContext(entity, purpose));
}

export function unwrapDataKey(master: MasterKey, entity: string, purpose: KeyPurpose, wrapped: Uint8Array): Buffer {
  const key = open(master.key, wrapped, wrapContext(entity, purpose));
  if (key?.length !== 32)
    throw new KeyError(
      "DATA_KEY_UNWRAP",
      `the ${purpose} data key of entity ${entity} does not open with master key ${master.id}: the stored key was altered or belongs elsewhere`,
      "restore meta.data_keys and master.key from the same backup",
    );
  return key;
}

/** Makes the entity's data keys if it has none (safe to run twice). */
export async function ensureDataKeys(tx: Tx, entity: string, ring: MasterKeyring): Promise<void> {
  // Wrap under the key the other rows name: mid-rotation that is master.key.next, not master.key.
  const [other] = await tx<{ master_key_id: string }[]>`select master_key_id from meta.data_keys limit 1`;
  const master = other ? ring.byId(other.master_key_id) : ring.current();
  for (const purpose of PURPOSES) {
    const wrapped = wrapDataKey(master, entity, purpose, randomBytes(32));
    await tx`insert into meta.data_keys (entity, purpose, wrapped, master_key_id)
             values (${entity}, ${purpose}, ${wrapped}, ${master.id}) on conflict do nothing`;
  }
}

/** Unwrapped data keys, cached per entity for the life of the process. */
export class DataKeyCache {
  private readonly keys = new Map<string, Promise<EntityKeys>>();

  constructor(readonly ring: MasterKeyring) {}

  get(sql: Tx, entity: string): Promise<EntityKeys> {
    let keys = this.keys.get(entity);
    if (!keys) {
      keys = this.load(sql, entity);
      keys.catch(() => this.keys.delete(entity));
      this.keys.set(entity, keys);
    }
    return keys;
  }

  private async load(sql: Tx, entity: string): Promise<EntityKeys> {
    const rows = await sql<{ purpose: KeyPurpose; wrapped: Buffer; master_key_id: string }[]>`
      select purpose, wrapped, master_key_id from meta.data_keys where entity = ${entity}`;
    const unwrap = (purpose: KeyPurpose) => {
      const row = rows.find((r) => r.purpose === purpose);
      if (!row)
        throw new KeyError(
          "DATA_KEY_MISSING",
          `entity ${entity} has no ${purpose} data key`,
          `run \`axe-appliance entity create ${entity}\``,
        );
      return unwrapDataKey(this.ring.byId(row.master_key_id), entity, purpose, row.wrapped);
    };
    return { pii: unwrap("pii"), blind: unwrap("blind") };
  }
}
