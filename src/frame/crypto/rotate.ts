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
import { createSecretFileOnce, type SecretOwner } from "../../lib/secret-file.ts";
import type { AuditEvent } from "../audit-sink.ts";
import { auditColumns } from "../store/audit.ts";
import { type AnchorPlace, signAnchor } from "../store/audit-anchor.ts";
import { rotateAuditKey } from "./audit-key.ts";
import { type KeyPurpose, unwrapDataKey, wrapDataKey } from "./data-keys.ts";
import { MasterKeyring, newMasterKeyText, readMasterKey } from "./master-key.ts";

export const KEYS_LOCK = "axe-appliance:entities";

export interface RotationResult {
  from: string;
  to: string;
  rewrapped: number;
}

/** `who` is recorded in meta.audit_log by the rotating transaction itself (the change and its row commit together). */
export async function rotateMasterKey(
  owner: Sql,
  keyPath: string,
  who = "cli",
  fileOwner?: SecretOwner,
): Promise<RotationResult> {
  const started = performance.now();
  const ring = new MasterKeyring(keyPath);
  const from = ring.current();
  const nextPath = `${keyPath}.next`;
  createSecretFileOnce(nextPath, newMasterKeyText, fileOwner); // frame.run_as reads it the moment it is renamed
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
    const row: AuditEvent = {
      at: new Date(),
      who,
      tool: "keys rotate",
      outcome: "ok",
      durationMs: performance.now() - started,
      detail: { master_key: { from: from.id, to: next.id, rewrapped: count } },
    };
    await tx`insert into meta.audit_log ${tx(auditColumns(row))}`;
    return count;
  });
  renameSync(nextPath, keyPath);
  return { from: from.id, to: next.id, rewrapped };
}

/**
 * `keys rotate --audit`: the old audit key signs the heads one last time, the new key takes over
 * (crypto/audit-key.ts), the rotation is recorded in meta.audit_log, and the new key signs the heads
 * including that row. Anchors signed before keep verifying under the old key's public half.
 */
export async function rotateAuditKeyWithAnchors(
  owner: Sql,
  place: AnchorPlace,
  who = "cli",
): Promise<{ from: string; to: string }> {
  const started = performance.now();
  await signAnchor(owner, place, "rotate");
  const rotated = await rotateAuditKey(place.secretsDir, place.fileOwner);
  const row: AuditEvent = {
    at: new Date(),
    who,
    customer: place.customer,
    tool: "keys rotate --audit",
    outcome: "ok",
    durationMs: performance.now() - started,
    detail: { audit_key: rotated },
  };
  await owner`insert into meta.audit_log ${owner(auditColumns(row))}`;
  await signAnchor(owner, place, "rotate");
  return rotated;
}
