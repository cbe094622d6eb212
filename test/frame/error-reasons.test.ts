/**
 * What clients read of frame's refusals and tool errors stays as it was when the errors' codes
 * became UPPER_SNAKE: the lower_snake `reason` in the HTTP body, the audit row and the metric label.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { parseExposition } from "../helpers/prometheus.ts";
import { json, proxyStamp, rpc } from "./harness.ts";
import { type DataFrame, startDataFrame } from "./tools-data/harness.ts";

let running: DataFrame;
let adminToken: string;

beforeAll(async () => {
  running = await startDataFrame();
  adminToken = await running.token("axe", "admin");
});
afterAll(async () => {
  await running?.close();
});

/** The audit rows of one request id, once the sink has written one (bounded wait). */
async function auditRowsOf(requestId: string): Promise<Array<Record<string, any>>> {
  for (let i = 0; i < 400; i++) {
    const rows = await running.db.sql`select * from entity_axe.audit_log where request_id = ${requestId}`;
    if (rows.length) return [...rows];
    await Bun.sleep(25);
  }
  throw new Error(`no audit row for request ${requestId}`);
}

test("a store refusal is a tool error whose audit row keeps its lower_snake reason", async () => {
  const cases = [
    ["get_record", { id: randomUUID() }, "not_found"],
    ["create_record", { collection: "ghosts", values: { name: "x" } }, "unknown_collection"],
  ] as const;
  for (const [tool, args, reason] of cases) {
    const requestId = randomUUID();
    const body = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: tool, arguments: args } };
    const response = await rpc(running.mcpUrl, body, {
      authorization: `Bearer ${adminToken}`,
      "x-request-id": requestId,
      ...proxyStamp(running.config),
    });
    const answer = await json(response);
    expect(answer.result.isError).toBe(true);
    expect(answer.result.content[0].text).not.toMatch(/failed inside frame/);
    expect((await auditRowsOf(requestId)).map((r) => [r.tool, r.outcome, r.reason])).toEqual([[tool, "error", reason]]);
  }
});

test("an auth refusal answers with its lower_snake reason in the body and the metric label", async () => {
  const whoami = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } };
  const response = await rpc(running.mcpUrl, whoami, { authorization: "Bearer axe_st_not-a-real-token" });
  expect(response.status).toBe(401);
  expect(await json(response)).toMatchObject({ error: "invalid_token", reason: "service_token_malformed" });
  const base = running.mcpUrl.replace(/\/frame\/mcp$/, "");
  const metrics = parseExposition(await (await fetch(`${base}/metrics`)).text());
  expect(
    metrics.value("axe_frame_auth_refusals_total", { reason: "service_token_malformed", code: "401", color: "blue" }),
  ).toBe(1);
  expect(metrics.series("axe_frame_auth_refusals_total").filter((s) => /[A-Z]/.test(s.labels.reason ?? ""))).toEqual(
    [],
  );
});
