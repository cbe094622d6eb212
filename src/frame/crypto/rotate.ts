/**
 * `keys rotate`: a new master key re-wraps every data key, while blue and green keep serving.
 * 1. the new key is written to master.key.next (kept if a previous run was interrupted);
 * 2. one transaction re-wraps every row of meta.data_keys and records the new key's id;
 * 3. master.key.next is renamed over master.key (atomic), and the old key is gone from disk.
 * Servers keep their unwrapped data keys (they did not change); a server that must unwrap one later
 * asks its keyring for the id the row names, which finds it in master.key or master.key.next.
 */
import { renameSync } from "node:fs";
import type { Sql } from "../../db/connect.ts";
import { createSecretFileOnce } from "../../lib/secret-file.ts";
import { type KeyPurpose, unwrapDataKey, wrapDataKey } from "./data-keys.ts";
import { MasterKeyring, newMasterKeyText, readMasterKey } from "./master-key.ts";

export const KEYS_LOCK = "axe-appliance:entities";

export interface RotationResult {
  from: string;
  to: string;
  rewrapped: number;
}

export async function rotateMasterKey(owner: Sql, keyPath: string): Promise<RotationResult> {
  const ring = new MasterKeyring(keyPath);
  const from = ring.current();
  const nextPath = `${keyPath}.next`;
  createSecretFileOnce(nextPath, newMasterKeyText);
  const next = readMasterKey(nextPath);
  const rewrapped = await owner.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${KEYS_LOCK}))`; // no entity is created meanwhile
    const rows = await tx<{ entity: string; purpose: KeyPurpose; wrapped: Buffer; master_key_id: string }[]>`
      select entity, purpose, wrapped, master_key_id from meta.data_keys order by entity, purpose for update`;
    let count = 0;
    for (const row of rows) {
      if (row.master_key_id === next.id) continue;
      const key = unwrapDataKey(ring.byId(row.master_key_id), row.entity, row.purpose, row.wrapped);
      const wrapped = wrapDataKey(next, row.entity, row.purpose, key);
      await tx`update meta.data_keys set wrapped = ${wrapped}, master_key_id = ${next.id}, rewrapped_at = now()
               where entity = ${row.entity} and purpose = ${row.purpose}`;
      count++;
    }
    return count;
  });
  renameSync(nextPath, keyPath);
  return { from: from.id, to: next.id, rewrapped };
}
