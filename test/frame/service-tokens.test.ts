import { afterEach, describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { issueServiceToken, parseDuration } from "../../src/frame/auth/service-tokens.ts";
import { runCli } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait.ts";
import { json, mcpClient, rpc, startTestFrame, type TestFrame } from "./harness.ts";

let running: TestFrame | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

const whoami = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } };

describe("service tokens", () => {
  test("issue prints the token once, it works over HTTP, list shows it without the secret, revoke stops it", async () => {
    running = await startTestFrame();
    const issued = await runCli([
      "token",
      "issue",
      "--entity",
      "labs",
      "--role",
      "writer",
      "--name",
      "zapier",
      "--expires",
      "30d",
      "--config",
      running.configDir,
    ]);
    expect(issued.stderr).toContain("shown once");
    expect(issued.code).toBe(0);
    const token = issued.stdout.trim();
    expect(token).toMatch(/^axe_st_[A-Za-z0-9_-]{43}$/);
    const keyFile = join(running.config.paths.secrets, "token.key");
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);

    const client = await mcpClient(running.mcpUrl, token);
    const result = await client.callTool({ name: "whoami", arguments: {} });
    await client.close();
    expect(result.structuredContent).toMatchObject({
      kind: "service",
      customer: "axe",
      entity: "labs",
      role: "writer",
      name: "zapier",
    });
    const expiresAt = Date.parse((result.structuredContent as { expiresAt: string }).expiresAt);
    expect(Math.abs(expiresAt - (Date.now() + 30 * 86_400_000))).toBeLessThan(120_000);

    const [row] = await running.db.sql`select hmac, last_used_at from meta.service_tokens`;
    expect(row!.hmac).toMatch(/^[0-9a-f]{64}$/);
    expect(row!.hmac).not.toContain(token.slice(7));
    expect(row!.last_used_at).toBeInstanceOf(Date);

    const listed = await runCli(["token", "list", "--json", "--config", running.configDir]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(token);
    const [entry] = JSON.parse(listed.stdout);
    expect(entry).toMatchObject({ name: "zapier", entity: "labs", role: "writer", revokedAt: null });
    const table = await runCli(["token", "list", "--config", running.configDir]);
    expect(table.stdout).toMatch(new RegExp(`${entry.id}\\s+zapier\\s+labs\\s+writer\\s+active`));

    const clearsBefore = running.frame.serviceTokens!.stats.cacheClears;
    const revoked = await runCli(["token", "revoke", entry.id, "--config", running.configDir]);
    expect(revoked.code).toBe(0);
    // The revocation reaches the server as a NOTIFY from the CLI's process: wait (bounded) until it has landed.
    await waitFor(
      "the revocation's notification",
      () => running!.frame.serviceTokens!.stats.cacheClears > clearsBefore,
    );
    const refused = await rpc(running.mcpUrl, whoami, { authorization: `Bearer ${token}` });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toStartWith('Bearer error="invalid_token"');
    expect((await json(refused)).reason).toBe("service_token_revoked");
    expect(running.audit.events.at(-1)).toMatchObject({
      who: "anonymous",
      reason: "service_token_revoked",
      outcome: "refused",
      status: 401,
    });
    const again = await runCli(["token", "revoke", entry.id, "--config", running.configDir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("no active token");
    // Issuing and revoking are operator writes: each is in meta's chain, committed with the change.
    const operations = await running.db.sql`
      select who, tool, entity, outcome, detail from meta.audit_log where tool like 'token %' order by seq`;
    expect([...operations]).toEqual([
      {
        who: expect.stringMatching(/^cli:/),
        tool: "token issue",
        entity: "labs",
        outcome: "ok",
        detail: { token: entry.id, entity: "labs", role: "writer", expires_at: entry.expiresAt },
      },
      {
        who: expect.stringMatching(/^cli:/),
        tool: "token revoke",
        entity: "labs",
        outcome: "ok",
        detail: { token: entry.id },
      },
    ]);
  });

  test("an expired token, an unknown one and a forged one are refused with 401 invalid_token", async () => {
    running = await startTestFrame();
    const { token } = await issueServiceToken(running.db.sql, running.config.paths.secrets, {
      customer: "axe",
      entity: "axe",
      role: "reader",
      name: "brief",
      expiresInMs: 1,
    });
    await Bun.sleep(5);
    for (const [bearer, reason] of [
      [token, "service_token_expired"],
      [`axe_st_${"A".repeat(43)}`, "service_token_unknown"],
      ["axe_st_short", "service_token_malformed"],
    ] as const) {
      const response = await rpc(running.mcpUrl, whoami, { authorization: `Bearer ${bearer}` });
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"');
      expect((await json(response)).reason).toBe(reason);
    }
  });

  test("a token of another customer's entity in the same database is refused", async () => {
    running = await startTestFrame();
    const { token } = await issueServiceToken(running.db.sql, running.config.paths.secrets, {
      customer: "other",
      entity: "other",
      role: "admin",
      name: "elsewhere",
      expiresInMs: 60_000,
    });
    const response = await rpc(running.mcpUrl, whoami, { authorization: `Bearer ${token}` });
    expect(response.status).toBe(401);
    expect((await json(response)).reason).toBe("service_token_elsewhere");
  });

  test("issue refuses an entity that is not the machine customer's and an unknown role; a reader token acts as a reader", async () => {
    running = await startTestFrame();
    const wrong = await runCli([
      "token",
      "issue",
      "--entity",
      "other",
      "--role",
      "admin",
      "--name",
      "x",
      "--config",
      running.configDir,
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("not an entity of customer axe; expected one of axe, labs");
    const badRole = await runCli([
      "token",
      "issue",
      "--entity",
      "axe",
      "--role",
      "owner",
      "--name",
      "x",
      "--config",
      running.configDir,
    ]);
    expect(badRole.code).toBe(2);
    expect(badRole.stderr).toContain("must be one of reader, writer, admin");
    const { token } = await issueServiceToken(running.db.sql, running.config.paths.secrets, {
      customer: "axe",
      entity: "axe",
      role: "reader",
      name: "ro",
      expiresInMs: 60_000,
    });
    const client = await mcpClient(running.mcpUrl, token);
    expect((await client.callTool({ name: "whoami", arguments: {} })).structuredContent).toMatchObject({
      role: "reader",
      roles: ["reader"],
    });
    await client.close();
  });

  test("durations", () => {
    expect(parseDuration("90d")).toBe(90 * 86_400_000);
    expect(parseDuration("12h")).toBe(12 * 3_600_000);
    expect(parseDuration("2w")).toBe(14 * 86_400_000);
    expect(() => parseDuration("90")).toThrow(/expected a number and a unit/);
    expect(() => parseDuration("0d")).toThrow(/not in the future/);
  });
});
