/**
 * Verifies Entra ID access tokens for this machine's customer with jose: RS256 only, `exp`
 * required, issuer v2 (`{authority}/{tid}/v2.0`) or, when configured, v1 (`{v1 base}/{tid}/`),
 * audience the API's client id or its Application ID URI, keys from the tenant's JWKS (one key set,
 * built at start-up from configuration, never from an unverified token's claims).
 *
 * @example
 * const entra = new EntraVerifier(config.customer, config.fleet, { authority, v1IssuerBase });
 * const principal = await entra.verify(jwt); // throws AuthError with status 401, 403 or 503
 */
import { createRemoteJWKSet, errors, jwtVerify, type RemoteJWKSet } from "jose";
import type { Customer, Fleet } from "../../config/customers.ts";
import { AuthError } from "../../lib/errors.ts";
import type { Principal } from "../principal.ts";
import { type EntraClaims, principalFromClaims, typedClaims } from "./entra-claims.ts";

export interface EntraSettings {
  /** Entra base URL, https://login.microsoftonline.com in production. */
  authority: string;
  /** Host part of v1 issuers, https://sts.windows.net in production. */
  v1IssuerBase: string;
  /** Least time between two JWKS fetches caused by an unknown kid; jose's default is 30 s. */
  jwksCooldownMs?: number;
  jwksTimeoutMs?: number;
  clockToleranceSec?: number;
}

export class EntraVerifier {
  readonly issuerV2: string;
  readonly issuerV1: string;
  readonly jwksUrl: string;
  private readonly jwks: RemoteJWKSet;
  private readonly audiences: string[];
  private readonly issuers: string[];

  constructor(
    private customer: Customer,
    private fleet: Fleet,
    private readonly settings: EntraSettings,
  ) {
    const tid = customer.entra.tenant_id;
    const authority = settings.authority.replace(/\/+$/, "");
    this.issuerV2 = `${authority}/${tid}/v2.0`;
    this.issuerV1 = `${settings.v1IssuerBase.replace(/\/+$/, "")}/${tid}/`;
    this.jwksUrl = `${authority}/${tid}/discovery/v2.0/keys`;
    this.jwks = createRemoteJWKSet(new URL(this.jwksUrl), {
      cooldownDuration: settings.jwksCooldownMs ?? 30_000,
      timeoutDuration: settings.jwksTimeoutMs ?? 5_000,
    });
    const { client_id, app_id_uri, accept_v1_tokens } = customer.entra;
    this.audiences = [client_id, ...(app_id_uri ? [app_id_uri] : [])].filter((a) => a !== "TBD");
    this.issuers = [this.issuerV2, ...(accept_v1_tokens ? [this.issuerV1] : [])];
  }

  /**
   * Takes a reloaded customers.yaml: entities, role and group mappings, allowed clients, the fleet's
   * domains. Tenant, client id, Application ID URI, scope and v1 acceptance shape the key set and
   * the accepted issuers and audiences, so a change of those needs a restart (serve checks first).
   */
  useCustomer(customer: Customer, fleet: Fleet): void {
    this.customer = customer;
    this.fleet = fleet;
  }

  /** Fetches the key set now so the first request does not wait; failure is not fatal. */
  async warm(): Promise<boolean> {
    try {
      await this.jwks.reload();
      return true;
    } catch {
      return false;
    }
  }

  async verify(token: string): Promise<Principal> {
    let payload: EntraClaims;
    try {
      ({ payload } = await jwtVerify<EntraClaims>(token, this.jwks, {
        algorithms: ["RS256"],
        issuer: this.issuers,
        audience: this.audiences,
        requiredClaims: ["exp"],
        clockTolerance: this.settings.clockToleranceSec ?? 60,
      }));
    } catch (error) {
      throw asAuthError(error);
    }
    return principalFromClaims(typedClaims(payload), this.customer, this.fleet, payload.iss === this.issuerV1);
  }
}

const invalid = (reason: string, message: string) => new AuthError(reason, message, 401);

/** jose's verdicts become 401 invalid_token; failing to get the keys becomes 503, never 401. */
function asAuthError(error: unknown): AuthError {
  if (error instanceof errors.JWTExpired) return invalid("token_expired", "the token has expired");
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") return invalid("token_not_yet_valid", "the token is not valid yet");
    if (error.claim === "iss")
      return invalid("wrong_issuer", "the token was not issued by this customer's Entra tenant");
    if (error.claim === "aud") return invalid("wrong_audience", "the token is not meant for this API");
    return invalid("invalid_claims", `the token's ${error.claim} claim is missing or invalid`);
  }
  if (error instanceof errors.JOSEAlgNotAllowed)
    return invalid("alg_not_allowed", "the token is not signed with RS256");
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return invalid("bad_signature", "the token's signature does not verify");
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return invalid("unknown_key", "the token is signed with a key the tenant does not publish");
  if (
    error instanceof errors.JWSInvalid ||
    error instanceof errors.JWTInvalid ||
    error instanceof errors.JOSENotSupported
  )
    return invalid("malformed_token", "the token is not a well-formed JWT");
  return new AuthError(
    "keys_unavailable",
    "the sign-in keys of the Entra tenant cannot be fetched right now; retry shortly",
    503,
  );
}
