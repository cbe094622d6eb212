/**
 * What an anchor says and where anchors live (audit-anchor.ts signs and verifies them), apart from
 * the signing code so that `status` can read the newest one without loading a crypto library.
 */
import { join } from "node:path";
import { z } from "zod";
import type { Config } from "../../config/load.ts";
import { lastLine } from "../../lib/line-file.ts";
import type { SecretOwner } from "../../lib/secret-file.ts";

export const ANCHORS_FILE = "audit-anchors.jsonl";

const Head = z.strictObject({
  /** "meta" or the entity name. */
  log: z.string(),
  /** 0 for an empty log. */
  seq: z.number().int().min(0),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ChainHead = z.infer<typeof Head>;

const HASH = z.string().regex(/^[0-9a-f]{64}$/);

/** An archive cut of meta.audit_log (store/audit-archive.ts): only a signed one excuses the rows it removed. */
const Cut = z.strictObject({
  log: z.literal("meta"),
  through: z.number().int().min(1),
  head_hash: HASH,
  file_sha256: HASH,
});
export type SignedCut = z.infer<typeof Cut>;

export const AnchorPayload = z.strictObject({
  format: z.literal("axe-audit-anchor/1"),
  customer: z.string(),
  /** When the heads were read (ISO 8601). */
  at: z.string(),
  reason: z.enum(["timer", "stop", "backup", "manual", "rotate", "archive"]),
  heads: z.array(Head),
  /** With reason "archive": the cut `audit archive` is about to commit. */
  cut: Cut.optional(),
});
export type AnchorPayload = z.infer<typeof AnchorPayload>;
export type AnchorReason = AnchorPayload["reason"];

/** A verified anchor: its signature holds under a key in audit-keys.json. */
export interface Anchor extends AnchorPayload {
  kid: string;
  /** Line number in the anchors file. */
  line: number;
}

/** Where anchors are written and which keys sign and check them. */
export interface AnchorPlace {
  file: string;
  secretsDir: string;
  customer: string;
  /** Who the key files and the anchors file are for when root writes them: frame.run_as (decision 79). */
  fileOwner?: SecretOwner;
}

export function anchorPlace(config: Config): AnchorPlace {
  return {
    file: join(config.paths.state, ANCHORS_FILE),
    secretsDir: config.paths.secrets,
    customer: config.customer.name,
  };
}

/** The newest anchor as written, unverified (status and the timer only look at its time and heads). */
export function latestAnchor(file: string): AnchorPayload | undefined {
  const line = lastLine(file);
  const payload = line?.split(".")[1];
  if (!payload) return undefined;
  try {
    const parsed = AnchorPayload.safeParse(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
