/**
 * From verified Entra claims to a Principal: tenant, client, app-only and guest rules, the
 * required scope, the frame role, and the entity. Runs only on a token whose signature, issuer,
 * audience and lifetime jose has already checked.
 */
import type { JWTPayload } from "jose";
import { z } from "zod";
import { type Customer, customerForDomain, type Fleet, ROLES, type Role } from "../../config/customers.ts";
import { AuthError } from "../../lib/errors.ts";
import type { Principal } from "../principal.ts";

/**
 * The types the rules below rely on, for the claims they read. Entra issues no other, and only Entra
 * (or whoever holds its keys) signs; still, a claim of another type is a 401 that names it, not a
 * 500 from inside the rules. Other claims pass unread.
 */
const ClaimTypes = z.looseObject({
  ver: z.string().optional(),
  tid: z.string().optional(),
  oid: z.string().optional(),
  /** v2: the calling client's id. */
  azp: z.string().optional(),
  /** v1: the calling client's id. */
  appid: z.string().optional(),
  /** Delegated scopes, space-separated short names ("frame.access"). */
  scp: z.string().optional(),
  roles: z.array(z.string()).optional(),
  groups: z.array(z.string()).optional(),
  upn: z.string().optional(),
  preferred_username: z.string().optional(),
  unique_name: z.string().optional(),
  /** "app" for app-only tokens when the optional claim is configured. */
  idtyp: z.string().optional(),
  /** Guest accounts (optional claim): documented as 0 or 1 without a JSON type; a "1" is a guest too. */
  acct: z.union([z.number(), z.string()]).optional(),
  /** Present when the user signed in at another identity provider (a guest's home tenant). */
  idp: z.string().optional(),
  /** Group overage (v1/v2): `{ groups: "src1" }` points at Graph instead of listing the groups. */
  _claim_names: z.record(z.string(), z.unknown()).optional(),
  /** Group overage (implicit flow): true instead of a groups claim. */
  hasgroups: z.union([z.boolean(), z.string()]).optional(),
});

/** A verified payload whose claims the rules read have the types they rely on. */
export type EntraClaims = JWTPayload & z.infer<typeof ClaimTypes>;

/** The verified payload as EntraClaims, or a 401 `invalid_claims` naming the first claim of another type. */
export function typedClaims(payload: JWTPayload): EntraClaims {
  const parsed = ClaimTypes.safeParse(payload);
  if (parsed.success) return payload as EntraClaims;
  const claim = parsed.error.issues[0]?.path[0];
  throw new AuthError("invalid_claims", `the token's ${String(claim)} claim is not of the type Entra issues`, 401);
}

/** A 403 for a caller whose token verified: the audit row names them (`{tid}/{oid}`), never their e-mail. */
export class IdentifiedRefusal extends AuthError {
  constructor(
    reason: string,
    message: string,
    readonly subject: string,
  ) {
    super(reason, message, 403);
  }
}

/** Throws an AuthError (401 or 403) unless the claims make a principal of `customer`. */
export function principalFromClaims(claims: EntraClaims, customer: Customer, fleet: Fleet, isV1: boolean): Principal {
  const entra = customer.entra;
  if (claims.tid !== entra.tenant_id)
    throw new AuthError("wrong_tenant", "the token was issued for another tenant", 401);
  if (typeof claims.oid !== "string" || !claims.oid)
    throw new AuthError("no_subject", "the token has no oid claim", 401);
  const subject = `${claims.tid}/${claims.oid}`;
  const forbid = (reason: string, message: string) => new IdentifiedRefusal(reason, message, subject);
  const client = isV1 ? claims.appid : claims.azp;
  // Every Entra access token names the client that obtained it; an ID token (same keys, same issuer,
  // `aud` the app signed in to) does not, and without `scp` it would pass for an app-only token.
  if (typeof client !== "string" || !client)
    throw new AuthError(
      "not_access_token",
      `the token names no client application (${isV1 ? "appid" : "azp"}): it is not an access token`,
      401,
    );
  if (entra.allowed_clients.length && !entra.allowed_clients.includes(client))
    throw forbid("client_not_allowed", "the client application that obtained this token is not an allowed connector");
  const appOnly = claims.idtyp === "app" || claims.scp === undefined;
  if (appOnly && !entra.allow_app_only)
    throw forbid("app_only", "app-only tokens (no signed-in user) are not accepted");
  if (isGuest(claims) && !entra.allow_guests)
    throw forbid("guest", "guest accounts are not accepted; sign in with an account of the company's own tenant");
  const scopes = (claims.scp ?? "").split(" ").filter(Boolean);
  if (!appOnly && !scopes.includes(entra.scope))
    throw forbid("missing_scope", `the token lacks the ${entra.scope} scope`);
  const appRoles = Array.isArray(claims.roles) ? claims.roles : [];
  const role = frameRole(appRoles, customer);
  if (!role) throw forbid("no_role", "no frame role is assigned to this account");
  const entity = entityFor(claims, appRoles, customer, fleet, forbid);
  return {
    kind: "entra",
    id: subject,
    tenantId: claims.tid,
    objectId: claims.oid,
    customer: customer.name,
    entity,
    role,
    scopes,
    ...(claims.exp ? { expiresAt: new Date(claims.exp * 1000) } : {}),
  };
}

function isGuest(claims: EntraClaims): boolean {
  if (Number(claims.acct) === 1) return true;
  if (typeof claims.idp !== "string") return false;
  // Members of the tenant either have no idp or the tenant's own v1 issuer as idp.
  return !claims.idp.endsWith(`/${claims.tid}/`) && !claims.idp.endsWith(`/${claims.tid}/v2.0`);
}

/** The highest frame role among the token's app roles, else the customer's default. */
function frameRole(appRoles: string[], customer: Customer): Role | undefined {
  const mapped = appRoles.map((r) => customer.entra.roles[r]).filter((r): r is Role => r !== undefined);
  if (mapped.length) return mapped.reduce((best, r) => (ROLES.indexOf(r) > ROLES.indexOf(best) ? r : best));
  const fallback = customer.entra.default_role;
  return fallback === "none" ? undefined : fallback;
}

/** True when Entra left the groups out because there are too many (the token points at Graph instead). */
function groupOverage(claims: EntraClaims): boolean {
  const names = claims._claim_names;
  const pointed = names !== null && typeof names === "object" && Object.hasOwn(names, "groups");
  return !Array.isArray(claims.groups) && (pointed || claims.hasgroups === true || claims.hasgroups === "true");
}

/** Explicit app-role or group mapping first, else the e-mail domain of the sign-in name. */
function entityFor(
  claims: EntraClaims,
  appRoles: string[],
  customer: Customer,
  fleet: Fleet,
  forbid: (reason: string, message: string) => AuthError,
): string {
  // Without its groups the token cannot be matched by group, and falling back to the domain could
  // pick another entity than the group mapping would: refuse unless no entity maps by group.
  if (groupOverage(claims) && customer.entities.some((e) => e.groups.length))
    throw forbid(
      "group_overage",
      "the token does not list the account's groups (it is in more groups than a token holds), so frame cannot tell " +
        "its entity; ask the Entra admin to assign the account an app role, or to emit only groups assigned to the application",
    );
  // GUIDs, compared in lower case (customers.yaml keeps them so): one case must never miss a mapping.
  const groups = Array.isArray(claims.groups)
    ? claims.groups.filter((g) => typeof g === "string").map((g) => g.toLowerCase())
    : [];
  const explicit = customer.entities.find(
    (e) => e.app_roles.some((r) => appRoles.includes(r)) || e.groups.some((g) => groups.includes(g)),
  );
  if (explicit) return explicit.name;
  // No groups claim at all: Entra leaves it out when the app registration emits none, when the
  // account is in no group, and when a SAML-style overage drops it. The domain could then pick
  // another entity than the account's group would (decision 71).
  if (!Array.isArray(claims.groups) && customer.entities.some((e) => e.groups.length))
    throw forbid(
      "groups_missing",
      "the token has no groups claim, and this customer maps entities by group, so frame cannot tell the account's entity; " +
        "ask the Entra admin to emit security groups in the access token (App registration > Token configuration > Add groups claim), " +
        "and to put the account in a group or assign it an app role",
    );
  const username = claims.preferred_username ?? claims.upn ?? claims.unique_name;
  const domain =
    typeof username === "string" && username.includes("@")
      ? username.slice(username.lastIndexOf("@") + 1).toLowerCase()
      : undefined;
  if (!domain) throw forbid("no_entity", "the token names no sign-in domain and no entity mapping applies");
  const byDomain = customer.entities.find((e) => e.domains.includes(domain));
  if (byDomain) return byDomain.name;
  const owner = customerForDomain(fleet, domain);
  if (owner && owner.name !== customer.name)
    throw forbid("other_customer_domain", "the account's domain belongs to another customer");
  throw forbid("unknown_domain", "the account's domain is not one of this customer's entities");
}
