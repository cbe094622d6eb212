/**
 * Turns a request's Authorization header into a Principal: service tokens by their prefix, every
 * other bearer token as an Entra JWT. Without --no-auth there is no other way in.
 */
import type { Customer } from "../../config/customers.ts";
import { AuthError } from "../../lib/errors.ts";
import type { Principal } from "../principal.ts";
import type { EntraVerifier } from "./entra.ts";
import { looksLikeServiceToken, type ServiceTokenVerifier } from "./service-tokens.ts";

export interface Authenticator {
  /** Resolves the caller or throws AuthError (401 missing/invalid, 403 not allowed, 503 keys unavailable). */
  authenticate(request: Request): Promise<Principal>;
}

export function bearerAuthenticator(entra: EntraVerifier, serviceTokens: ServiceTokenVerifier): Authenticator {
  return {
    async authenticate(request) {
      const token = bearerToken(request.headers.get("authorization"));
      return looksLikeServiceToken(token) ? serviceTokens.verify(token) : entra.verify(token);
    },
  };
}

/** `serve --no-auth`: everyone is the admin of the customer's first entity. Loopback only (checked by serve). */
export function devAuthenticator(customer: Customer): Authenticator {
  const principal: Principal = {
    kind: "dev",
    id: "dev",
    label: "serve --no-auth",
    customer: customer.name,
    entity: customer.entities[0]!.name,
    role: "admin",
    scopes: [],
  };
  return { authenticate: async () => principal };
}

/** The bearer token of an Authorization header; a missing header is `missing_token` (a bare challenge). */
export function bearerToken(header: string | null): string {
  if (!header)
    throw new AuthError(
      "missing_token",
      "sign-in required: send an Entra access token or a service token as a Bearer token",
      401,
    );
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  if (!match) throw new AuthError("malformed_header", "the Authorization header is not 'Bearer <token>'", 401);
  return match[1]!;
}
