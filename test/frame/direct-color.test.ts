/**
 * Another local account can call a color on its loopback port directly, past the proxy. It must not
 * make frame's audit log say something untrue: a request id of another request (which a reviewer
 * follows from the proxy's access log to the audit rows), or a source address of its choosing in
 * the refusal tally. frame believes X-Request-Id and X-Forwarded-For only on what our proxy
 * forwarded (its stamp under color.key); through the proxy they still match the access log.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Config, loadConfig } from "../../src/config/load.ts";
import { issueServiceToken } from "../../src/frame/auth/service-tokens.ts";
import { type RunningFrame, startFrame } from "../../src/frame/serve.ts";
import { createLogger } from "../../src/lib/log.ts";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { eventually, framePairConfigDir, type InProcessProxy, startProxy, stopAll } from "../proxy/harness.ts";
import { rpc } from "./harness.ts";

let db: TestDatabase;
let config: Config;
let frame: RunningFrame | undefined;
let proxy: InProcessProxy;
let direct: string;
let token: string;

const WHOAMI = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } };

beforeAll(async () => {
  db = await freshDatabase("direct");
  const { dir, blue } = await framePairConfigDir(db.target);
  config = loadConfig({ dir });
  frame = await startFrame({ config, color: "blue", logger: createLogger({ level: "error" }) });
  direct = `http://127.0.0.1:${blue}/frame/mcp`;
  proxy = await startProxy(dir);
  await eventually(async () => (await proxyStatus(proxy.socket)).colors.blue.healthy, "blue healthy behind the proxy");
  token = (
    await issueServiceToken(db.sql, config.paths.secrets, {
      customer: "axe",
      entity: "axe",
      role: "reader",
      name: "direct-reader",
      expiresInMs: 3_600_000,
    })
  ).token;
}, 60_000);

afterAll(async () => {
  await frame?.stop();
  await stopAll();
  await db?.drop();
});

const requestIds = async (tool: string) =>
  (await db.sql<{ request_id: string }[]>`select request_id from entity_axe.audit_log where tool = ${tool}`).map(
    (r) => r.request_id,
  );

describe("a local account calling a color directly", () => {
  test("cannot give its tool call another request's id; through the proxy the id is the access log's", async () => {
    const victim = "0199a7c1-5e2b-7c3d-8e4f-a1b2c3d4e5f6";
    const response = await rpc(direct, WHOAMI, {
      authorization: `Bearer ${token}`,
      "x-request-id": victim,
      "x-forwarded-for": "198.51.100.7",
    });
    expect(response.status).toBe(200);
    await response.text();
    await eventually(async () => (await requestIds("whoami")).length === 1, "the direct call's audit row");
    expect(await requestIds("whoami")).not.toContain(victim);

    const proxied = await rpc(`${proxy.url}/frame/mcp`, WHOAMI, { authorization: `Bearer ${token}` });
    expect(proxied.status).toBe(200);
    await proxied.text();
    const id = proxied.headers.get("x-request-id")!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await eventually(
      async () => (await requestIds("whoami")).includes(id),
      "the proxied call's row with the proxy's id",
    );
  }, 30_000);

  test("a caller cannot stamp its own request as the proxy's", async () => {
    const response = await rpc(`${proxy.url}/frame/mcp`, WHOAMI, {
      authorization: `Bearer ${token}`,
      "x-axe-forwarded": "0".repeat(64),
    });
    expect(response.status).toBe(200);
    await response.text();
    const id = response.headers.get("x-request-id")!;
    await eventually(async () => (await requestIds("whoami")).includes(id), "the row carries the proxy's id");
  }, 30_000);

  test("cannot put a source address of its choosing, or another request's id, into the refusal tally", async () => {
    const victim = "0199a7c1-5e2b-7c3d-8e4f-000000000001";
    for (let i = 0; i < 8; i++) {
      const response = await rpc(direct, WHOAMI, {
        authorization: "Bearer x.y.z",
        "x-request-id": victim,
        "x-forwarded-for": `198.51.100.${i}`,
      });
      expect(response.status).toBe(401);
      await response.text();
    }
    const proxied = await rpc(`${proxy.url}/frame/mcp`, WHOAMI, { authorization: "Bearer x.y.z" });
    expect(proxied.status).toBe(401);
    await proxied.text();
    await frame!.stop(); // the current minute's tally is written on the way out
    frame = undefined;
    const rows = await db.sql<{ request_id: string | null; detail: { sources: string[]; count: number } }[]>`
      select request_id, detail from meta.audit_log where reason = 'malformed_token'`;
    expect(rows.reduce((sum, r) => sum + r.detail.count, 0)).toBe(9);
    const sources = rows.flatMap((r) => r.detail.sources);
    expect(sources.filter((s) => s.startsWith("198.51.100."))).toEqual([]);
    expect(sources).toContain("127.0.0.1");
    expect(rows.map((r) => r.request_id)).not.toContain(victim);
  }, 30_000);
});
