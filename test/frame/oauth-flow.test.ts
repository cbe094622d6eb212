import { afterAll, beforeAll, expect, test } from "bun:test";
import { type OAuthClientProvider, UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import { CLIENT_AXE, CONNECTOR_CLIENT, TENANT_AXE } from "../helpers/config.ts";
import { EntraStandIn } from "../helpers/entra.ts";
import { startTestFrame, type TestFrame } from "./harness.ts";

const REDIRECT = "https://claude.ai/api/mcp/auth_callback";
const SECRET = "connector-secret-for-tests";

/** What claude.ai's connector is: a pre-registered confidential client (Entra has no dynamic registration). */
class ConnectorProvider implements OAuthClientProvider {
  authorizationUrl?: URL;
  private saved?: OAuthTokens;
  private verifier = "";
  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      redirect_uris: [REDIRECT],
      client_name: "connector under test",
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    };
  }
  clientInformation(): OAuthClientInformationMixed {
    return { client_id: CONNECTOR_CLIENT, client_secret: SECRET };
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
}

let standIn: EntraStandIn;
let running: TestFrame;

beforeAll(async () => {
  standIn = await EntraStandIn.start();
  await standIn.addTenant(TENANT_AXE);
  standIn.addApi({ clientId: CLIENT_AXE, appIdUri: "https://axe.axelabs.ai/frame/mcp", version: 2 });
  standIn.addClient({ clientId: CONNECTOR_CLIENT, secret: SECRET, redirectUris: [REDIRECT] });
  standIn.signInAs(TENANT_AXE, {
    oid: "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a",
    username: "jo@axe-labs.dev",
    name: "Jo",
  });
  running = await startTestFrame({
    frame: { entra_authority: standIn.authority, entra_v1_issuer_base: standIn.v1IssuerBase },
  });
});
afterAll(async () => {
  await running?.close();
  await standIn?.stop();
});

test("the SDK's own OAuth client goes from the bare MCP URL to whoami: PRM, Entra metadata, code + PKCE, token", async () => {
  const provider = new ConnectorProvider();
  const url = new URL(running.mcpUrl);

  // 1. Unauthenticated connect: 401 with resource_metadata; the SDK discovers and sends us to authorize.
  const first = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await expect(new Client({ name: "connector", version: "1" }).connect(first)).rejects.toBeInstanceOf(
    UnauthorizedError,
  );
  const authorize = provider.authorizationUrl!;
  expect(authorize.origin + authorize.pathname).toBe(`${standIn.authority}/${TENANT_AXE}/oauth2/v2.0/authorize`);
  expect(authorize.searchParams.get("client_id")).toBe(CONNECTOR_CLIENT);
  expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
  expect(authorize.searchParams.get("scope")).toBe("https://axe.axelabs.ai/frame/mcp/frame.access");
  expect(authorize.searchParams.get("resource")).toBe(running.mcpUrl);

  // 2. The stand-in signs the test user in without a browser and redirects back with a code.
  const redirect = await fetch(authorize, { redirect: "manual" });
  expect(redirect.status).toBe(302);
  const back = new URL(redirect.headers.get("location")!);
  expect(back.origin + back.pathname).toBe(REDIRECT);
  const code = back.searchParams.get("code")!;
  expect(code).toBeTruthy();

  // 3. The SDK exchanges the code (client secret + PKCE verifier) at the token endpoint.
  await first.finishAuth(code);
  expect(provider.tokens()?.access_token.split(".")).toHaveLength(3);

  // 4. Connected with the token, whoami sees the entity of the user's domain.
  const client = new Client({ name: "connector", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
  const tools = await client.listTools();
  expect(tools.tools.map((t) => t.name)).toContain("whoami");
  const result = await client.callTool({ name: "whoami", arguments: {} });
  expect(result.structuredContent).toMatchObject({
    kind: "entra",
    customer: "axe",
    entity: "labs",
    principal: `${TENANT_AXE}/0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a`,
  });
  await client.close();

  // A replayed code is refused by the stand-in, as Entra would.
  await expect(first.finishAuth(code)).rejects.toThrow();
});
