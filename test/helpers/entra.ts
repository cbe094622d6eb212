/**
 * A local Entra ID stand-in on 127.0.0.1: per tenant, the v2 openid-configuration, the JWKS, an
 * authorize endpoint that signs a configured test user in without a browser, and a token endpoint
 * that checks the client secret (basic or post) and PKCE S256, issuing real RS256 access tokens
 * shaped like Entra's, v2 or v1. Keys can be rotated and the JWKS taken down.
 *
 * Paths follow Entra: {authority}/{tid}/v2.0/.well-known/openid-configuration,
 * {authority}/{tid}/discovery/v2.0/keys, {authority}/{tid}/oauth2/v2.0/{authorize,token}.
 * v1 issuers are {authority}/sts/{tid}/ (frame.entra_v1_issuer_base = {authority}/sts).
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface TestUser {
  oid: string;
  username: string;
  name?: string;
  roles?: string[];
  groups?: string[];
  /** Extra claims (acct, idp, ...) merged into tokens for this user. */
  extra?: Record<string, unknown>;
}

/** An API app registration: what an access token for its scopes looks like. */
export interface TestApi {
  clientId: string;
  appIdUri?: string;
  /** requestedAccessTokenVersion; Entra's default for a new registration is v1 (null). */
  version: 1 | 2;
}

export interface TestClient {
  clientId: string;
  secret: string;
  redirectUris: string[];
}

export interface MintOptions {
  version?: 1 | 2;
  /** Claims to set or override (undefined removes one). */
  claims?: Record<string, unknown>;
  key?: SigningKey;
  /** Protected header override (alg, kid). */
  header?: Record<string, unknown>;
  expiresInSec?: number;
}

interface Tenant {
  keys: SigningKey[];
  users: TestUser[];
  signedIn?: TestUser;
}

interface PendingCode {
  tid: string;
  clientId: string;
  redirectUri: string;
  challenge: string;
  scope: string;
  user: TestUser;
  expires: number;
}

export class EntraStandIn {
  private readonly tenants = new Map<string, Tenant>();
  private readonly apis: TestApi[] = [];
  private readonly clients = new Map<string, TestClient>();
  private readonly codes = new Map<string, PendingCode>();
  private server?: ReturnType<typeof Bun.serve>;
  /** When true, the JWKS endpoints answer 503 (Entra unreachable). */
  jwksDown = false;
  /** Counts JWKS fetches, to see refetches happen. */
  jwksFetches = 0;

  get authority(): string {
    return `http://127.0.0.1:${this.server!.port}`;
  }
  get v1IssuerBase(): string {
    return `${this.authority}/sts`;
  }
  issuerV2(tid: string): string {
    return `${this.authority}/${tid}/v2.0`;
  }
  issuerV1(tid: string): string {
    return `${this.v1IssuerBase}/${tid}/`;
  }

  static async start(): Promise<EntraStandIn> {
    const standIn = new EntraStandIn();
    standIn.server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (request) => standIn.handle(request) });
    return standIn;
  }

  async stop(): Promise<void> {
    await this.server?.stop(true);
  }

  async addTenant(tid: string): Promise<void> {
    this.tenants.set(tid, { keys: [await newKey()], users: [] });
  }

  addApi(api: TestApi): void {
    this.apis.push(api);
  }

  addClient(client: TestClient): void {
    this.clients.set(client.clientId, client);
  }

  /** The user the authorize endpoint signs in for this tenant. */
  signInAs(tid: string, user: TestUser): void {
    this.tenant(tid).signedIn = user;
  }

  /** A new signing key becomes current; the old one stays published unless `dropOld`. */
  async rotate(tid: string, options: { dropOld?: boolean } = {}): Promise<SigningKey> {
    const tenant = this.tenant(tid);
    const key = await newKey();
    tenant.keys = options.dropOld ? [key] : [key, ...tenant.keys];
    return key;
  }

  /** The current signing key of a tenant. */
  key(tid: string): SigningKey {
    return this.tenant(tid).keys[0]!;
  }

  /** Signs an access token as Entra would for `user` in `tid`, calling `api` from `clientId`. */
  async accessToken(
    tid: string,
    api: TestApi,
    clientId: string,
    user: TestUser,
    options: MintOptions & { scp?: string } = {},
  ): Promise<string> {
    const version = options.version ?? api.version;
    const now = Math.floor(Date.now() / 1000);
    const base: Record<string, unknown> = {
      aud: version === 2 ? api.clientId : (api.appIdUri ?? api.clientId),
      iss: version === 2 ? this.issuerV2(tid) : this.issuerV1(tid),
      iat: now,
      nbf: now,
      exp: now + (options.expiresInSec ?? 3600),
      aio: randomBytes(8).toString("base64url"),
      name: user.name ?? user.username,
      oid: user.oid,
      rh: "0.stand-in",
      scp: options.scp ?? "frame.access",
      sub: createHash("sha256").update(`${tid}/${user.oid}/${clientId}`).digest("base64url").slice(0, 43),
      tid,
      uti: randomBytes(8).toString("base64url"),
      ...(user.roles?.length ? { roles: user.roles } : {}),
      ...(user.groups?.length ? { groups: user.groups } : {}),
      ...(version === 2
        ? { azp: clientId, azpacr: "1", preferred_username: user.username, ver: "2.0" }
        : { appid: clientId, appidacr: "1", upn: user.username, unique_name: user.username, ver: "1.0" }),
      ...user.extra,
    };
    return this.sign(tid, { ...base, ...options.claims }, options);
  }

  /** Signs arbitrary claims with the tenant's current key (or `options.key`). */
  async sign(tid: string, claims: Record<string, unknown>, options: MintOptions = {}): Promise<string> {
    const key = options.key ?? this.key(tid);
    const payload = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));
    return new SignJWT(payload)
      .setProtectedHeader({ typ: "JWT", alg: "RS256", kid: key.kid, x5t: key.kid, ...options.header } as {
        alg: string;
      })
      .sign(key.privateKey);
  }

  private tenant(tid: string): Tenant {
    const tenant = this.tenants.get(tid);
    if (!tenant) throw new Error(`stand-in: unknown tenant ${tid}`);
    return tenant;
  }

  private async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const match =
      /^\/([0-9a-f-]{36})\/(v2\.0\/\.well-known\/openid-configuration|discovery\/v2\.0\/keys|oauth2\/v2\.0\/authorize|oauth2\/v2\.0\/token)$/.exec(
        url.pathname,
      );
    const tenant = match ? this.tenants.get(match[1]!) : undefined;
    if (!match || !tenant) return Response.json({ error: "invalid_tenant" }, { status: 404 });
    const tid = match[1]!;
    switch (match[2]) {
      case "v2.0/.well-known/openid-configuration":
        return Response.json(this.openidConfiguration(tid));
      case "discovery/v2.0/keys":
        this.jwksFetches++;
        if (this.jwksDown) return new Response("unavailable", { status: 503 });
        return Response.json({
          keys: tenant.keys.map((k) => ({
            ...k.publicJwk,
            kid: k.kid,
            x5t: k.kid,
            use: "sig",
            issuer: this.issuerV2(tid),
          })),
        });
      case "oauth2/v2.0/authorize":
        return this.authorize(tid, tenant, url.searchParams);
      default:
        return request.method === "POST"
          ? this.token(tid, request)
          : Response.json({ error: "invalid_request" }, { status: 405 });
    }
  }

  private openidConfiguration(tid: string) {
    const base = `${this.authority}/${tid}`;
    // Entra's document lists no code_challenge_methods_supported, although it does PKCE.
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ["query", "fragment", "form_post"],
      subject_types_supported: ["pairwise"],
      id_token_signing_alg_values_supported: ["RS256"],
      response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
      scopes_supported: ["openid", "profile", "email", "offline_access"],
      issuer: this.issuerV2(tid),
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${this.authority}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      http_logout_supported: true,
      claims_supported: [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "acr",
        "nonce",
        "preferred_username",
        "name",
        "tid",
        "ver",
        "at_hash",
        "c_hash",
        "email",
      ],
      tenant_region_scope: "EU",
    };
  }

  private authorize(tid: string, tenant: Tenant, params: URLSearchParams): Response {
    const client = this.clients.get(params.get("client_id") ?? "");
    const redirectUri = params.get("redirect_uri") ?? "";
    if (!client?.redirectUris.includes(redirectUri)) return Response.json({ error: "invalid_client" }, { status: 400 });
    const fail = (error: string) =>
      Response.redirect(`${redirectUri}?${new URLSearchParams({ error, state: params.get("state") ?? "" })}`, 302);
    if (params.get("response_type") !== "code") return fail("unsupported_response_type");
    if (params.get("code_challenge_method") !== "S256" || !params.get("code_challenge")) return fail("invalid_request");
    if (!tenant.signedIn) return fail("login_required");
    const code = randomBytes(24).toString("base64url");
    this.codes.set(code, {
      tid,
      clientId: client.clientId,
      redirectUri,
      challenge: params.get("code_challenge")!,
      scope: params.get("scope") ?? "",
      user: tenant.signedIn,
      expires: Date.now() + 60_000,
    });
    const query = new URLSearchParams({ code, ...(params.get("state") ? { state: params.get("state")! } : {}) });
    return Response.redirect(`${redirectUri}?${query}`, 302);
  }

  private async token(tid: string, request: Request): Promise<Response> {
    const form = new URLSearchParams(await request.text());
    const fail = (error: string, description: string) =>
      Response.json({ error, error_description: description }, { status: 400 });
    let clientId = form.get("client_id") ?? "";
    let secret = form.get("client_secret") ?? "";
    const basic = /^Basic (.+)$/i.exec(request.headers.get("authorization") ?? "");
    if (basic) {
      const decoded = Buffer.from(basic[1]!, "base64").toString();
      const colon = decoded.indexOf(":");
      clientId = decodeURIComponent(decoded.slice(0, colon));
      secret = decodeURIComponent(decoded.slice(colon + 1));
    }
    const client = this.clients.get(clientId);
    if (!client || client.secret !== secret)
      return Response.json(
        { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret provided." },
        { status: 401 },
      );
    if (form.get("grant_type") !== "authorization_code")
      return fail("unsupported_grant_type", "only authorization_code here");
    const pending = this.codes.get(form.get("code") ?? "");
    this.codes.delete(form.get("code") ?? "");
    if (!pending || pending.expires < Date.now() || pending.tid !== tid || pending.clientId !== clientId)
      return fail("invalid_grant", "AADSTS70008: the code is unknown, used or expired");
    if (form.get("redirect_uri") !== pending.redirectUri) return fail("invalid_grant", "redirect_uri does not match");
    const verifier = form.get("code_verifier") ?? "";
    if (createHash("sha256").update(verifier).digest("base64url") !== pending.challenge)
      return fail("invalid_grant", "AADSTS501481: the code_verifier does not match the code_challenge");
    const requested = pending.scope.split(" ").filter((s) => s.includes("/"));
    const api = this.apis.find((a) => requested.some((s) => s.startsWith(`${a.appIdUri ?? `api://${a.clientId}`}/`)));
    if (!api) return fail("invalid_scope", "AADSTS650053: no API exposes the requested scope");
    const scp = requested.map((s) => s.slice(s.lastIndexOf("/") + 1)).join(" ");
    const accessToken = await this.accessToken(tid, api, clientId, pending.user, { scp });
    return Response.json({
      token_type: "Bearer",
      scope: requested.join(" "),
      expires_in: 3600,
      ext_expires_in: 3600,
      access_token: accessToken,
    });
  }
}

async function newKey(): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { kid: randomUUID().replaceAll("-", "").slice(0, 27), privateKey, publicJwk };
}
