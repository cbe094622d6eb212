/**
 * Anchors: the heads (last seq and hash) of meta's and every entity's audit chain, signed with the
 * audit key (crypto/audit-key.ts, which the database never sees) and appended, one compact JWS per
 * line, to {state_dir}/audit-anchors.jsonl, which every backup's config-and-state snapshot carries.
 * Whoever acts as the database owner can rewrite rows and recompute every hash, but cannot sign
 * the new head: `audit verify` holds each chain against every anchor (audit-verify.ts).
 *
 * serve signs every `frame.audit_anchor_minutes` and when it stops, `backup run` before its
 * snapshot of config and state, `keys rotate --audit` with the old key and the new.
 *
 * @example
 * await signAnchor(ownerSql, anchorPlace(config), "manual");   // anchorPlace: audit-anchor-format.ts
 * const { anchors, problems } = await readAnchors(anchorPlace(config));
 */
import { CompactSign, compactVerify, decodeProtectedHeader } from "jose";
import { appendLine, readLines } from "../../lib/line-file.ts";
import { AUDIT_KEYS_FILE, auditPublicKeys, loadAuditSigner, publicKeyObject } from "../crypto/audit-key.ts";
import {
  type Anchor,
  type AnchorPayload,
  AnchorPayload as AnchorPayloadSchema,
  type AnchorPlace,
  type AnchorReason,
  type ChainHead,
  type SignedCut,
} from "./audit-anchor-format.ts";
import { GENESIS } from "./audit-hash.ts";
import { entitySchema } from "./names.ts";
import type { Tx } from "./queryable.ts";

export { type Anchor, type AnchorPlace, anchorPlace, latestAnchor } from "./audit-anchor-format.ts";

const ALG = "Ed25519";
const TYP = "axe-audit-anchor+json";

/** The head of meta's log and of every entity's, read with the owner connection. */
export async function chainHeads(owner: Tx): Promise<ChainHead[]> {
  const entities = await owner<{ name: string }[]>`select name from meta.entities order by name`;
  const logs: Array<[string, string]> = [
    ["meta", "meta"],
    ...entities.map((e): [string, string] => [e.name, entitySchema(e.name)]),
  ];
  const heads: ChainHead[] = [];
  for (const [log, schema] of logs) {
    const [row] = await owner<{ seq: string; hash: string }[]>`
      select l.seq::text as seq, l.hash from ${owner(`${schema}.audit_log`)} as l order by l.seq desc limit 1`;
    heads.push({ log, seq: row ? Number(row.seq) : 0, hash: row?.hash ?? GENESIS });
  }
  return heads;
}

/** Reads every chain's head, signs them (and `cut`, an archive's) with the current audit key and appends the anchor. */
export async function signAnchor(
  owner: Tx,
  place: AnchorPlace,
  reason: AnchorReason,
  cut?: SignedCut,
): Promise<AnchorPayload> {
  const signer = await loadAuditSigner(place.secretsDir, place.fileOwner);
  const payload: AnchorPayload = {
    format: "axe-audit-anchor/1",
    customer: place.customer,
    at: new Date().toISOString(),
    reason,
    heads: await chainHeads(owner),
    ...(cut ? { cut } : {}),
  };
  const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: ALG, typ: TYP, kid: signer.kid })
    .sign(signer.privateKey);
  appendLine(place.file, jws, { mode: 0o600, ...(place.fileOwner ? { owner: place.fileOwner } : {}) });
  return payload;
}

/**
 * Every anchor in the file whose signature holds, and a problem for each line that does not (bad
 * signature, unknown key, signed by a key after it was retired, another customer's): a file that
 * someone edited is itself a finding. A line torn by a crash is skipped.
 */
export async function readAnchors(place: AnchorPlace): Promise<{ anchors: Anchor[]; problems: string[] }> {
  const keys = new Map(auditPublicKeys(place.secretsDir).map((k) => [k.kid, k]));
  const anchors: Anchor[] = [];
  const problems: string[] = [];
  for (const { line, number } of readLines(place.file)) {
    const problem = (what: string) => problems.push(`${place.file}:${number}: ${what}`);
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(line).kid;
    } catch {
      problem("not a signed anchor");
      continue;
    }
    const key = kid ? keys.get(kid) : undefined;
    if (!key) {
      problem(`signed by key ${kid ?? "(none)"}, which is not in ${AUDIT_KEYS_FILE}`);
      continue;
    }
    let payload: AnchorPayload;
    try {
      const verified = await compactVerify(line, publicKeyObject(key), { algorithms: [ALG] });
      if (verified.protectedHeader.typ !== TYP) throw new Error(`typ ${verified.protectedHeader.typ}`);
      payload = AnchorPayloadSchema.parse(JSON.parse(new TextDecoder().decode(verified.payload)));
    } catch (error) {
      problem(`the signature or content does not hold (${(error as Error).message.slice(0, 120)})`);
      continue;
    }
    if (key.retired && payload.at > key.retired)
      problem(`signed at ${payload.at} by key ${kid}, retired at ${key.retired}`);
    else if (payload.customer !== place.customer)
      problem(`an anchor of customer ${payload.customer}, not ${place.customer}`);
    else anchors.push({ ...payload, kid: kid!, line: number });
  }
  return { anchors, problems };
}
