/**
 * The fifth review (decision 77): authentication attacked by someone who knows the code. Each test
 * here is an attack that held on the day of the review; it stays so that it keeps holding.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { generateKeyPair } from "jose";
import { connect } from "../../src/db/connect.ts";
import { memoryAuditSink } from "../../src/frame/audit-sink.ts";
import { issueServiceToken, revokeServiceToken, SERVICE_TOKEN_CHANNEL } from "../../src/frame/auth/service-tokens.ts";
import { type RunningFrame, startFrame } from "../../src/frame/serve.ts";
import { createLogger } from "../../src/lib/log.ts";
import { CLIENT_AXE, CONNECTOR_CLIENT, TENANT_AXE, TENANT_OTHER, TEST_CUSTOMERS } from "../helpers/config.ts";
import { EntraStandIn, type TestApi, type TestUser } from "../helpers/entra.ts";
import { freePort } from "../helpers/ports.ts";
import { waitFor } from "../helpers/wait.ts";
import { json, rpc, startTestFrame, type TestFrame } from "./harness.ts";

const API: TestApi = { clientId: CLIENT_AXE, appIdUri: "https://axe.axelabs.ai/frame/mcp", version: 2 };
const KIM: TestUser = { oid: "6f1d2c3b-4a59-4e8f-9d7c-1b2a3c4d5e6f", username: "kim@axellc.com", name: "Kim" };
const WHOAMI = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } };

function fleetWith(entra: Record<string, unknown>) {
  const [axe, other] = TEST_CUSTOMERS.customers;
  return { ...TEST_CUSTOMERS, customers: [{ ...axe, entra: { ...axe!.entra, ...entra } }, other] };
}

let standIn: EntraStandIn;
beforeAll(async () => {
  standIn = await EntraStandIn.start();
  await standIn.addTenant(TENANT_AXE);
  await standIn.addTenant(TENANT_OTHER);
});
afterAll(async () => {
  await standIn?.stop();
});

const entraFrame = (options: Parameters<typeof startTestFrame>[0] = {}) =>
  startTestFrame({
    ...options,
    frame: { entra_authority: standIn.authority, entra_v1_issuer_base: standIn.v1IssuerBase },
  });
const token = (user: TestUser = KIM, options: Parameters<EntraStandIn["accessToken"]>[4] = {}) =>
  standIn.accessToken(TENANT_AXE, API, CONNECTOR_CLIENT, user, options);
const call = (url: string, bearer: string) => rpc(url, WHOAMI, { authorization: `Bearer ${bearer}` });

async function outcome(url: string, bearer: string): Promise<string> {
  const response = await call(url, bearer);
  const body = await json(response);
  return `${response.status} ${body.reason ?? (body.result ? "served" : "?")}`;
}

describe("Entra tokens an attacker can get signed", () => {
  test("a flood of tokens with unknown kids fetches the tenant's keys at most once per cooldown", async () => {
    // Production's cooldown (30 s) or longer: the harness's default of 0 refetches on every unknown kid.
    const running = await entraFrame({ jwksCooldownMs: 600_000 });
    try {
      expect(await outcome(running.mcpUrl, await token())).toBe("200 served"); // the key set is loaded
      const before = standIn.jwksFetches;
      const stranger = await generateKeyPair("RS256");
      const forged = (i: number) =>
        token(KIM, { key: { kid: `unpublished-${i}`, privateKey: stranger.privateKey, publicJwk: {} } });
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(
          Array.from({ length: 10 }, async (_, i) => outcome(running.mcpUrl, await forged(round * 10 + i))),
        );
        expect(new Set(answers)).toEqual(new Set(["401 unknown_key"]));
      }
      expect(standIn.jwksFetches - before).toBeLessThanOrEqual(1);
      expect(await outcome(running.mcpUrl, await token())).toBe("200 served");
    } finally {
      await running.close();
    }
  });

  test("tokens Entra could sign for someone else, or in the other version's shape, are refused", async () => {
    const running = await entraFrame({ customers: fleetWith({ accept_v1_tokens: true }) });
    const now = Math.floor(Date.now() / 1000);
    try {
      const cases: Array<[string, Promise<string>, string]> = [
        // Entra signs every tenant's tokens with the same keys: the issuer and tid tell them apart.
        [
          "another tenant's token under its own issuer, signed with the shared key",
          token(KIM, { claims: { iss: standIn.issuerV2(TENANT_OTHER), tid: TENANT_OTHER } }),
          "401 wrong_issuer",
        ],
        [
          "another tenant's v1 token",
          token(KIM, { version: 1, claims: { iss: standIn.issuerV1(TENANT_OTHER), tid: TENANT_OTHER } }),
          "401 wrong_issuer",
        ],
        ["our issuer with another tenant's tid", token(KIM, { claims: { tid: TENANT_OTHER } }), "401 wrong_tenant"],
        [
          "another API of our tenant",
          token(KIM, { claims: { aud: "api://0b7d3f21-0000-4000-8000-000000000000" } }),
          "401 wrong_audience",
        ],
        ["expired beyond the 60 s tolerance", token(KIM, { claims: { exp: now - 120 } }), "401 token_expired"],
        ["not valid for two more minutes", token(KIM, { claims: { nbf: now + 120 } }), "401 token_not_yet_valid"],
        // A v1-shaped token (appid) under the v2 issuer and the reverse: the client is read from the
        // claim of the issuer's version, which the other shape lacks.
        [
          "v1 claims under the v2 issuer",
          token(KIM, { claims: { azp: undefined, appid: CONNECTOR_CLIENT, ver: "1.0" } }),
          "401 not_access_token",
        ],
        [
          "v2 claims under the v1 issuer",
          token(KIM, { claims: { iss: standIn.issuerV1(TENANT_AXE) } }),
          "401 not_access_token",
        ],
        // An ID token for the API app: no scp, no azp.
        [
          "an ID token",
          token(KIM, { claims: { scp: undefined, azp: undefined, azpacr: undefined, nonce: "n" } }),
          "401 not_access_token",
        ],
        [
          "an app-only token of the connector",
          token(
            { oid: randomUUID(), username: "", roles: ["Frame.Admin"] },
            {
              claims: { scp: undefined, idtyp: "app", preferred_username: undefined },
            },
          ),
          "403 app_only",
        ],
        [
          "a guest whose sign-in name is in the customer's domain",
          token({ oid: randomUUID(), username: "eve@axellc.com", extra: { idp: "live.com" } }),
          "403 guest",
        ],
        [
          "a member of the tenant in another customer's domain",
          token({ oid: randomUUID(), username: "lee@other.example" }),
          "403 other_customer_domain",
        ],
        // Claims of a type Entra never issues: a clear 401, never a 500 from inside the rules.
        ["scp as a list", token(KIM, { claims: { scp: ["frame.access"] } }), "401 invalid_claims"],
        ["roles as a string", token(KIM, { claims: { roles: "Frame.Admin" } }), "401 invalid_claims"],
        ["groups with a number", token(KIM, { claims: { groups: [7] } }), "401 invalid_claims"],
        ["the sign-in name as a number", token(KIM, { claims: { preferred_username: 42 } }), "401 invalid_claims"],
        [
          "a guest's acct as a string",
          token({ oid: randomUUID(), username: "ann@axellc.com", extra: { acct: "1" } }),
          "403 guest",
        ],
      ];
      for (const [name, minted, expected] of cases)
        expect(`${name}: ${await outcome(running.mcpUrl, await minted)}`).toBe(`${name}: ${expected}`);
    } finally {
      await running.close();
    }
  });
});

describe("an ID token is not an access token (decision 77)", () => {
  // Entra signs ID tokens with the same keys, for the app a user signed in to. An ID token for the
  // API app (possible when that app is also a sign-in client) carries no scp and no client claim;
  // with app-only tokens allowed and no allowed_clients it was taken for an app-only one and served.
  test("with app-only tokens allowed and any client, an ID token of the API app is refused", async () => {
    const running = await entraFrame({ customers: fleetWith({ allow_app_only: true, allowed_clients: [] }) });
    try {
      const idToken = await token(
        { ...KIM, roles: ["Frame.Admin"] },
        { claims: { scp: undefined, azp: undefined, azpacr: undefined, nonce: "n" } },
      );
      expect(await outcome(running.mcpUrl, idToken)).toBe("401 not_access_token");
      // An app-only access token names its client: it gets past that check to the entity rules.
      const appOnly = await token(
        { oid: randomUUID(), username: "", roles: ["Frame.Admin"] },
        { claims: { scp: undefined, idtyp: "app", preferred_username: undefined } },
      );
      const response = await call(running.mcpUrl, appOnly);
      expect(`${response.status} ${(await json(response)).reason}`).toBe("403 no_entity"); // none maps Frame.Admin
      expect(await outcome(running.mcpUrl, await token())).toBe("200 served");
    } finally {
      await running.close();
    }
  });
});

describe("service tokens", () => {
  let blue: TestFrame;
  let green: RunningFrame;
  let greenUrl: string;
  beforeAll(async () => {
    blue = await entraFrame();
    const port = await freePort();
    green = await startFrame({
      config: blue.config,
      color: "green",
      port,
      audit: memoryAuditSink(),
      logger: createLogger({ level: "error" }),
    });
    greenUrl = `http://127.0.0.1:${port}/frame/mcp`;
  });
  afterAll(async () => {
    await green?.stop();
    await blue?.close();
  });

  const issue = (entity = "labs") =>
    issueServiceToken(blue.db.sql, blue.config.paths.secrets, {
      customer: "axe",
      entity,
      role: "writer",
      name: "review",
      expiresInMs: 600_000,
    });

  test("a revoked token is refused by both colors at once, also by one whose listen connection was cut", async () => {
    const { token: secret, record } = await issue();
    for (const url of [blue.mcpUrl, greenUrl, blue.mcpUrl, greenUrl])
      expect(await outcome(url, secret)).toBe("200 served");
    const hits = [blue.frame.serviceTokens!.stats.cacheHits, green.serviceTokens!.stats.cacheHits];
    expect(hits.every((n) => n > 0)).toBe(true); // both colors answer from their caches

    // Both listen connections are cut; each subscribes again and still hears the revocation.
    const root = connect(blue.db.admin, { max: 1 });
    try {
      const subscribes = [blue.frame.serviceTokens!.stats.subscribes, green.serviceTokens!.stats.subscribes];
      const listeners = await root<{ pid: number }[]>`select pid from pg_stat_activity
        where datname = ${blue.db.target.database} and query = ${`listen "${SERVICE_TOKEN_CHANNEL}"`}`;
      expect(listeners.length).toBe(2);
      for (const { pid } of listeners) await root`select pg_terminate_backend(${pid})`;
      await waitFor(
        "both colors to subscribe again",
        () =>
          blue.frame.serviceTokens!.stats.subscribes > subscribes[0]! &&
          green.serviceTokens!.stats.subscribes > subscribes[1]!,
        { intervalMs: 10 },
      );
    } finally {
      await root.end({ timeout: 5 });
    }
    expect(await outcome(greenUrl, secret)).toBe("200 served");

    const clears = [blue.frame.serviceTokens!.stats.cacheClears, green.serviceTokens!.stats.cacheClears];
    const cli = connect(blue.db.target, { max: 1 }); // `token revoke`, a process of its own
    try {
      expect(await revokeServiceToken(cli, "axe", record.id)).toBe(true);
    } finally {
      await cli.end({ timeout: 5 });
    }
    await waitFor(
      "both colors to hear the revocation",
      () =>
        blue.frame.serviceTokens!.stats.cacheClears > clears[0]! && green.serviceTokens!.stats.cacheClears > clears[1]!,
      { intervalMs: 10 },
    );
    for (const url of [blue.mcpUrl, greenUrl]) expect(await outcome(url, secret)).toBe("401 service_token_revoked");
  });

  test("a token acts in its own entity only, whatever the request says", async () => {
    const { token: secret } = await issue("labs");
    const response = await rpc(
      blue.mcpUrl,
      { ...WHOAMI, params: { name: "whoami", arguments: {}, _meta: { entity: "axe" } } },
      { authorization: `Bearer ${secret}`, "x-axe-entity": "axe" },
    );
    expect((await json(response)).result.structuredContent).toMatchObject({ kind: "service", entity: "labs" });
  });
});

describe("no part of a token reaches logs, audit rows, metrics or error bodies", () => {
  test("accepted, refused and failing tokens of both kinds", async () => {
    const lines: string[] = [];
    const running = await entraFrame({ logger: createLogger({ level: "debug", write: (line) => lines.push(line) }) });
    try {
      const { token: service, record } = await issueServiceToken(running.db.sql, running.config.paths.secrets, {
        customer: "axe",
        entity: "axe",
        role: "reader",
        name: "secret-check",
        expiresInMs: 600_000,
      });
      const revoked = (
        await issueServiceToken(running.db.sql, running.config.paths.secrets, {
          customer: "axe",
          entity: "axe",
          role: "reader",
          name: "revoked",
          expiresInMs: 600_000,
        })
      ).token;
      await revokeServiceToken(
        running.db.sql,
        "axe",
        (
          await running.db.sql<{ id: string }[]>`
        select id from meta.service_tokens where name = 'revoked'`
        )[0]!.id,
      );
      const now = Math.floor(Date.now() / 1000);
      const tokens = [
        service,
        revoked,
        `axe_st_${"A".repeat(43)}`,
        `axe_st_short`,
        await token(),
        await token(KIM, { claims: { exp: now - 3600 } }),
        await token(KIM, { claims: { aud: "api://someone-else" } }),
        await token({ oid: randomUUID(), username: "eve@axellc.com", extra: { acct: 1 } }),
        await token({ oid: randomUUID(), username: "lee@other.example" }),
      ];
      const seen: string[] = [];
      for (const bearer of tokens) {
        const response = await call(running.mcpUrl, bearer);
        seen.push(JSON.stringify([...response.headers]), await response.text());
      }
      const metrics = await fetch(`${running.base}/metrics`);
      seen.push(await metrics.text(), JSON.stringify(running.audit.events), lines.join("\n"));
      const everything = seen.join("\n");
      expect(running.audit.events.length).toBeGreaterThanOrEqual(6);
      for (const bearer of tokens) {
        // the whole token, and each part of a JWT (its claims and signature) long enough to be its own
        for (const part of [bearer, ...bearer.split(".").filter((p) => p.length >= 16)])
          expect(everything.includes(part) ? `${part.slice(0, 12)}… is in the output` : "absent").toBe("absent");
      }
      expect(everything).toContain(record.id); // the audit rows name the token by its id
    } finally {
      await running.close();
    }
  });
});
