import { expect, test } from "bun:test";
import { TEST_CUSTOMERS } from "../helpers/config.ts";
import { startTestFrame } from "./harness.ts";

test("the 401 challenge and the metadata name the Entra scope, and name none while the API app is TBD", async () => {
  const registered = await startTestFrame();
  try {
    const response = await fetch(registered.mcpUrl, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain('scope="https://axe.axelabs.ai/frame/mcp/frame.access"');
  } finally {
    await registered.close();
  }

  const unregistered = structuredClone(TEST_CUSTOMERS);
  const axe = unregistered.customers[0]!.entra as Record<string, unknown>;
  delete axe.app_id_uri;
  axe.client_id = "TBD";
  const pending = await startTestFrame({ customers: unregistered });
  try {
    const response = await fetch(pending.mcpUrl, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(response.status).toBe(401);
    const challenge = response.headers.get("www-authenticate")!;
    expect(challenge).toStartWith('Bearer resource_metadata="');
    expect(challenge).not.toContain("scope=");
    const metadata = (await (await fetch(`${pending.base}/.well-known/oauth-protected-resource/frame/mcp`)).json()) as {
      scopes_supported: string[];
    };
    expect(metadata.scopes_supported).toEqual([]);
  } finally {
    await pending.close();
  }
});
