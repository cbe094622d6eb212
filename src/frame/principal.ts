/**
 * Who is calling frame, after authentication: the contract between auth (which builds it) and
 * the tools and store (which act for it). Identity is tid+oid for Entra users, never an e-mail.
 */
import type { Role } from "../config/customers.ts";

export type TokenKind = "entra" | "service" | "dev";

export interface Principal {
  kind: TokenKind;
  /** Stable identity for audit rows: `{tid}/{oid}`, `service:{tokenId}` or `dev`. */
  id: string;
  tenantId?: string;
  objectId?: string;
  serviceTokenId?: string;
  /** Service token name; for Entra users nothing (their e-mail is PII and stays out of logs). */
  label?: string;
  customer: string;
  /** The entity whose schema every tool call of this principal runs in. */
  entity: string;
  role: Role;
  scopes: string[];
  expiresAt?: Date;
}

const RANK: Record<Role, number> = { reader: 1, writer: 2, admin: 3 };

/** True when `role` is at least `needed` (admin > writer > reader). */
export function hasRole(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}
