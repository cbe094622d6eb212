import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import { CLIENT_AXE, CONNECTOR_CLIENT, TENANT_AXE, TENANT_OTHER, TEST_CUSTOMERS } from "../helpers/config.ts";
import { EntraStandIn, type TestApi, type TestUser } from "../helpers/entra.ts";
import { json, mcpClient, rpc, startTestFrame, type TestFrame } from "./harness.ts";

const API: TestApi = { clientId: CLIENT_AXE, appIdUri: "https://axe.axelabs.ai/frame/mcp", version: 2 };
const SCOPE = "https://axe.axelabs.ai/frame/mcp/frame.access";
const KIM: TestUser = { oid: "6f1d2c3b-4a59-4e8f-9d7c-1b2a3c4d5e6f", username: "kim@axellc.com", name: "Kim" };
const whoami = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } };

/** customers.yaml of the test fleet with the axe customer's entra (and entities) adjusted. */
function fleetWith(entra: Record<string, unknown>, entities?: unknown[]) {
  const [axe, other] = TEST_CUSTOMERS.customers;
  return {
    ...TEST_CUSTOMERS,
    customers: [{ ...axe, entra: { ...axe!.entra, ...entra }, ...(entities ? { entities } : {}) }, other],
  };
}

let standIn: EntraStandIn;
let running: TestFrame;

beforeAll(async () => {
  standIn = await EntraStandIn.start();
  await standIn.addTenant(TENANT_AXE);
  await standIn.addTenant(TENANT_OTHER);
  running = await startTestFrame({
    frame: { entra_authority: standIn.authority, entra_v1_issuer_base: standIn.v1IssuerBase },
  });
});
afterAll(async () => {
  await running?.close();
  await standIn?.stop();
});

const token = (user: TestUser = KIM, options: Parameters<EntraStandIn["accessToken"]>[4] = {}) =>
  standIn.accessToken(TENANT_AXE, API, CONNECTOR_CLIENT, user, options);
const call = (bearer?: string, frame = running) =>
  rpc(frame.mcpUrl, whoami, bearer ? { authorization: `Bearer ${bearer}` } : {});

async function expectRefused(response: Response, status: number, reason: string) {
  const body = await json(response);
  expect({ status: response.status, reason: body.reason }).toEqual({ status, reason });
  const challenge = response.headers.get("www-authenticate") ?? "";
  const metadata = `resource_metadata="${running.base}/.well-known/oauth-protected-resource/frame/mcp"`;
  if (status === 401) expect(challenge).toStartWith(`Bearer error="invalid_token", error_description="`);
  if (status === 403) expect(challenge).toStartWith(`Bearer error="insufficient_scope", error_description="`);
  if (status === 403) expect(challenge).toContain(`scope="${SCOPE}"`);
  expect(challenge).toContain(metadata);
  expect(JSON.stringify(body)).not.toMatch(/\bat .*:\d+:\d+/);
}

describe("Entra tokens", () => {
  test("a v2 token of the customer's tenant reaches whoami, with the entity from the e-mail domain", async () => {
    const client = await mcpClient(running.mcpUrl, await token());
    const result = await client.callTool({ name: "whoami", arguments: {} });
    await client.close();
    expect(result.structuredContent).toMatchObject({
      principal: `${TENANT_AXE}/${KIM.oid}`,
      kind: "entra",
      customer: "axe",
      entity: "axe",
      role: "writer",
      scopes: ["frame.access"],
    });
    const labs = await call(await token({ oid: randomUUID(), username: "jo@Axe-Labs.dev" }));
    expect(labs.status).toBe(200);
    expect(await labs.text()).toContain('\\"entity\\":\\"labs\\"');
  });

  test("no token: 401 with resource_metadata and scope, and no error code", async () => {
    const response = await call();
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe(
      `Bearer resource_metadata="${running.base}/.well-known/oauth-protected-resource/frame/mcp", scope="${SCOPE}"`,
    );
    expect(running.audit.events.at(-1)).toMatchObject({
      who: "anonymous",
      reason: "missing_token",
      outcome: "refused",
      status: 401,
    });
  });

  test("the protected resource metadata is served at the path-inserted and the root URL", async () => {
    for (const path of ["/.well-known/oauth-protected-resource/frame/mcp", "/.well-known/oauth-protected-resource"]) {
      const response = await fetch(running.base + path);
      expect(response.status).toBe(200);
      expect(await json(response)).toEqual({
        resource: running.mcpUrl,
        authorization_servers: [standIn.issuerV2(TENANT_AXE)],
        scopes_supported: [SCOPE],
        bearer_methods_supported: ["header"],
        resource_name: "frame (axe)",
      });
    }
    expect(running.mcpUrl.endsWith("/")).toBe(false);
  });

  test("invalid tokens: 401 invalid_token, each for its own reason", async () => {
    const now = Math.floor(Date.now() / 1000);
    const stranger = await generateKeyPair("RS256");
    const current = standIn.key(TENANT_AXE);
    const hsKey = new TextEncoder().encode(
      await exportSPKI(
        (await crypto.subtle.importKey("jwk", current.publicJwk, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, true, [
          "verify",
        ])) as never,
      ),
    );
    const valid = await token();
    const [, payload] = valid.split(".");
    const cases: Array<[string, string, string]> = [
      ["garbage", "not.a.jwt", "malformed_token"],
      ["expired", await token(KIM, { claims: { iat: now - 7200, nbf: now - 7200, exp: now - 3600 } }), "token_expired"],
      ["not yet valid", await token(KIM, { claims: { nbf: now + 3600 } }), "token_not_yet_valid"],
      [
        "wrong issuer",
        await token(KIM, { claims: { iss: `https://login.microsoftonline.com/${TENANT_AXE}/v2.0` } }),
        "wrong_issuer",
      ],
      [
        "wrong audience",
        await token(KIM, { claims: { aud: "00000003-0000-0000-c000-000000000000" } }),
        "wrong_audience",
      ],
      ["no exp", await token(KIM, { claims: { exp: undefined } }), "invalid_claims"],
      [
        "other tenant, its own valid key",
        await standIn.accessToken(TENANT_OTHER, API, CONNECTOR_CLIENT, KIM),
        "unknown_key",
      ],
      ["other tenant's tid under our issuer", await token(KIM, { claims: { tid: TENANT_OTHER } }), "wrong_tenant"],
      [
        "alg none",
        `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.`,
        "alg_not_allowed",
      ],
      [
        "HS256 with the RSA public key",
        await new SignJWT(JSON.parse(Buffer.from(payload!, "base64url").toString()))
          .setProtectedHeader({ alg: "HS256", kid: current.kid })
          .sign(hsKey),
        "alg_not_allowed",
      ],
      [
        "unknown kid",
        await token(KIM, { key: { kid: "unpublished-kid", privateKey: stranger.privateKey, publicJwk: {} } }),
        "unknown_key",
      ],
      [
        "known kid, wrong key",
        await token(KIM, { key: { kid: current.kid, privateKey: stranger.privateKey, publicJwk: {} } }),
        "bad_signature",
      ],
      ["a v1 token when v1 is not accepted", await token(KIM, { version: 1 }), "wrong_issuer"],
    ];
    for (const [name, bearer, reason] of cases) {
      const response = await call(bearer);
      expect(`${name}: ${response.status}`).toBe(`${name}: 401`);
      await expectRefused(response, 401, reason);
    }
  });

  test("valid tokens that may not come in: 403 insufficient_scope", async () => {
    const cases: Array<[string, string, string]> = [
      [
        "app-only",
        await token(KIM, {
          claims: { scp: undefined, idtyp: "app", roles: ["Frame.Admin"], preferred_username: undefined },
        }),
        "app_only",
      ],
      ["guest by idp", await token({ ...KIM, extra: { idp: `https://sts.windows.net/${TENANT_OTHER}/` } }), "guest"],
      ["guest by acct", await token({ ...KIM, extra: { acct: 1 } }), "guest"],
      [
        "another customer's domain",
        await token({ oid: randomUUID(), username: "lee@other.example" }),
        "other_customer_domain",
      ],
      ["a domain of nobody", await token({ oid: randomUUID(), username: "max@gmail.com" }), "unknown_domain"],
      ["missing scope", await token(KIM, { scp: "User.Read" }), "missing_scope"],
      [
        "a client that is not an allowed connector",
        await standIn.accessToken(TENANT_AXE, API, randomUUID(), KIM),
        "client_not_allowed",
      ],
    ];
    for (const [name, bearer, reason] of cases) {
      const response = await call(bearer);
      expect(`${name}: ${response.status}`).toBe(`${name}: 403`);
      await expectRefused(response, 403, reason);
    }
    const denied = running.audit.events.find((e) => e.reason === "other_customer_domain");
    expect(denied).toMatchObject({ outcome: "denied", status: 403, customer: "axe" });
    expect(denied!.who).toMatch(new RegExp(`^${TENANT_AXE}/[0-9a-f-]{36}$`));
    expect(JSON.stringify(running.audit.events)).not.toContain("other.example");
  });

  test("keys rotate at the tenant: new tokens verify without a restart; JWKS down gives 503, then recovers", async () => {
    const before = standIn.jwksFetches;
    const rotated = await standIn.rotate(TENANT_AXE);
    const fresh = await token();
    expect(JSON.parse(Buffer.from(fresh.split(".")[0]!, "base64url").toString()).kid).toBe(rotated.kid);
    expect((await call(fresh)).status).toBe(200);
    expect(standIn.jwksFetches).toBeGreaterThan(before);

    standIn.jwksDown = true;
    await standIn.rotate(TENANT_AXE, { dropOld: true });
    const unseen = await token();
    const down = await call(unseen);
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).toBe("5");
    expect(down.headers.get("www-authenticate")).toBeNull();
    expect((await json(down)).reason).toBe("keys_unavailable");
    standIn.jwksDown = false;
    expect((await call(unseen)).status).toBe(200);
  });
});

describe("Entra options", () => {
  test("v1 tokens when accepted; app roles pick role and entity before the domain; default_role none refuses", async () => {
    const frame = await startTestFrame({
      frame: { entra_authority: standIn.authority, entra_v1_issuer_base: standIn.v1IssuerBase },
      customers: fleetWith({ accept_v1_tokens: true, default_role: "none" }, [
        { name: "axe", domains: ["axellc.com"] },
        { name: "labs", domains: ["axe-labs.dev"], app_roles: ["Labs.Member"] },
      ]),
    });
    try {
      const v1 = await token({ ...KIM, roles: ["Frame.Read"] }, { version: 1 });
      expect(JSON.parse(Buffer.from(v1.split(".")[1]!, "base64url").toString())).toMatchObject({
        ver: "1.0",
        aud: API.appIdUri,
        iss: standIn.issuerV1(TENANT_AXE),
        appid: CONNECTOR_CLIENT,
      });
      const client = await mcpClient(frame.mcpUrl, v1);
      expect((await client.callTool({ name: "whoami", arguments: {} })).structuredContent).toMatchObject({
        entity: "axe",
        role: "reader",
      });
      await client.close();
      const mapped = await mcpClient(frame.mcpUrl, await token({ ...KIM, roles: ["Frame.Admin", "Labs.Member"] }));
      expect((await mapped.callTool({ name: "whoami", arguments: {} })).structuredContent).toMatchObject({
        entity: "labs",
        role: "admin",
      });
      await mapped.close();
      const none = await call(await token(KIM), frame);
      expect(none.status).toBe(403);
      expect((await json(none)).reason).toBe("no_role");
    } finally {
      await frame.close();
    }
  });
});

describe("Entra ids in customers.yaml are matched whatever their case (third review)", () => {
  // Entra writes object ids in lower case; customers.yaml accepted them in any case and compared
  // exactly, so an entity mapped by an upper-case group id never matched and its members fell back to
  // their e-mail domain: another entity's data.
  test("a group, tenant and client written in upper case still map the account to the group's entity", async () => {
    const group = "0f9e8d7c-0000-4000-8000-0000000000aa";
    const frame = await startTestFrame({
      frame: { entra_authority: standIn.authority, entra_v1_issuer_base: standIn.v1IssuerBase },
      customers: fleetWith({ tenant_id: TENANT_AXE.toUpperCase(), allowed_clients: [CONNECTOR_CLIENT.toUpperCase()] }, [
        { name: "axe", domains: ["axellc.com"] },
        { name: "labs", groups: [group.toUpperCase()] },
      ]),
    });
    try {
      const client = await mcpClient(frame.mcpUrl, await token({ ...KIM, roles: ["Frame.Read"], groups: [group] }));
      expect((await client.callTool({ name: "whoami", arguments: {} })).structuredContent).toMatchObject({
        entity: "labs",
      });
      await client.close();
      // Kim in another group (not the mapped one) is served in the entity of her domain, as before.
      const plain = await call(await token({ ...KIM, roles: ["Frame.Read"], groups: ["unrelated"] }), frame);
      expect((await json(plain)).result.structuredContent.entity).toBe("axe");
    } finally {
      await frame.close();
    }
  });
});

describe("Entra group overage (issue 12 item 8)", () => {
  // A user in more groups than a token holds gets no `groups` claim, only a pointer to Graph.
  const OVERAGE_V2 = { _claim_names: { groups: "src1" }, _claim_sources: { src1: { endpoint: "https://graph" } } };
  const OVERAGE_IMPLICIT = { hasgroups: true };
  /** axe by domain, labs by a group: a token that cannot show its groups must not fall back to axe. */
  const groupMappedFrame = () =>
    startTestFrame({
      frame: { entra_authority: standIn.authority, entra_v1_issuer_base: standIn.v1IssuerBase },
      customers: fleetWith({}, [
        { name: "axe", domains: ["axellc.com"] },
        { name: "labs", domains: ["axe-labs.dev"], groups: ["0f9e8d7c-0000-4000-8000-000000000001"] },
      ]),
    });

  test("with entities mapped by group, a token without its groups is refused with a 403 that says why", async () => {
    const frame = await groupMappedFrame();
    try {
      for (const extra of [OVERAGE_V2, OVERAGE_IMPLICIT]) {
        const response = await call(await token({ ...KIM, roles: ["Frame.Read"], extra }), frame);
        expect(response.status).toBe(403);
        const body = await json(response);
        expect(body.reason).toBe("group_overage");
        expect(body.error_description).toMatch(/groups/);
        expect(response.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
      }
      expect(frame.audit.events.filter((e) => e.reason === "group_overage").length).toBe(2);
      // The same account with its groups listed is served as before.
      const listed = await call(await token({ ...KIM, roles: ["Frame.Read"], groups: ["unrelated"] }), frame);
      expect(listed.status).toBe(200);
    } finally {
      await frame.close();
    }
  });

  test("a token with no groups claim at all is refused too: it cannot tell a member of the group from anyone in the domain", async () => {
    // Entra leaves `groups` out when the app registration emits none, when the account is in no group,
    // and when a SAML-style overage drops it; the domain would then pick axe for a member of labs.
    const frame = await groupMappedFrame();
    try {
      const response = await call(await token({ ...KIM, roles: ["Frame.Read"] }), frame);
      expect(response.status).toBe(403);
      const body = await json(response);
      expect(body.reason).toBe("groups_missing");
      expect(body.error_description).toContain("groups claim");
      expect(frame.audit.events.filter((e) => e.reason === "groups_missing").length).toBe(1);
      // the same account with its groups listed (none of them mapped) is served by its domain
      const listed = await call(await token({ ...KIM, roles: ["Frame.Read"], groups: ["unrelated"] }), frame);
      expect(listed.status).toBe(200);
    } finally {
      await frame.close();
    }
  });

  test("a customer that maps by domain only serves the overage token from its domain", async () => {
    const response = await call(await token({ ...KIM, roles: ["Frame.Read"], extra: OVERAGE_V2 }));
    expect(response.status).toBe(200);
    expect((await json(response)).result.structuredContent.entity).toBe("axe");
  });
});
