/**
 * Anonymous refusals are counted per reason and minute, not chained one by one: a flood of bad
 * tokens cannot fill the disk through meta.audit_log. Nor can a signed-in account that frame
 * refuses (a guest, no role): its refusals are counted per account. Denials of a frame user's tool
 * calls stay individual.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { CLIENT_AXE, CONNECTOR_CLIENT, TENANT_AXE } from "../helpers/config.ts";
import { EntraStandIn } from "../helpers/entra.ts";
import { rpc } from "./harness.ts";
import { call, type DataFrame, PEOPLE, startDataFrame } from "./tools-data/harness.ts";

let running: DataFrame | undefined;
let standIn: EntraStandIn | undefined;
afterEach(async () => {
  await running?.close();
  await standIn?.stop();
  running = standIn = undefined;
});

const INIT = { jsonrpc: "2.0", id: 1, method: "tools/list" };

describe("refusal tally", () => {
  test("10,000 bad-token requests add a handful of rows that count all of them", async () => {
    running = await startDataFrame();
    const { db, mcpUrl } = running;
    const [before] = await db.sql`select count(*)::int as n from meta.audit_log`;
    let sent = 0;
    const statuses = new Map<number, number>();
    await Promise.all(
      Array.from({ length: 32 }, async (_, c) => {
        while (sent < 10_000) {
          sent++;
          const response = await rpc(mcpUrl, INIT, {
            authorization: "Bearer x.y.z",
            "x-forwarded-for": `203.0.113.${c % 8}`,
          });
          await response.arrayBuffer();
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        }
      }),
    );
    expect([...statuses]).toEqual([[401, 10_000]]);
    // An authenticated denial stays one row per call.
    const reader = await running.client("axe", "reader");
    for (let i = 0; i < 2; i++) expect((await call(reader, "define_collection", PEOPLE)).isError).toBe(true);
    await reader.close();
    await running.frame.stop(); // the tally of the current minute is written on the way out
    running = undefined;
    const [after] =
      await db.sql`select count(*)::int as n from meta.audit_log where tool is distinct from 'token issue'`;
    expect(after!.n - before!.n).toBeLessThanOrEqual(4); // one per reason and minute; the run may cross a minute
    const rows = await db.sql<{ reason: string; status: number; who: string; detail: any }[]>`
      select reason, status, who, detail from meta.audit_log
      where seq > ${before!.n} and tool is distinct from 'token issue' order by seq`;
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.who === "anonymous" && r.reason === rows[0]!.reason && r.status === 401)).toBe(true);
    expect(rows.reduce((sum, r) => sum + r.detail.count, 0)).toBe(10_000);
    const sources = new Set(rows.flatMap((r) => r.detail.sources as string[]));
    expect(sources.size).toBeGreaterThan(0);
    expect([...sources]).toEqual(["127.0.0.1"]); // straight to the color: its peer, not the X-Forwarded-For it sent (decision 75)
    for (const r of rows) expect(Date.parse(r.detail.first_at)).toBeLessThanOrEqual(Date.parse(r.detail.last_at));
    const denied = await db.sql`select who, reason from entity_axe.audit_log where outcome = 'denied'`;
    expect(denied.map((r) => r.reason)).toEqual(["role", "role"]);
    const verify = await import("../../src/frame/store/audit-verify.ts");
    const reports = await verify.verifyAudit(db.sql);
    expect(reports.filter((r) => r.broken)).toEqual([]);
    await db.drop();
  }, 120_000);

  test("a guest's valid token refused 2,000 times adds a row per minute that names the guest and counts every refusal", async () => {
    standIn = await EntraStandIn.start();
    await standIn.addTenant(TENANT_AXE);
    running = await startDataFrame({
      entra_authority: standIn.authority,
      entra_v1_issuer_base: standIn.v1IssuerBase,
    });
    const { db, mcpUrl } = running;
    const guest = { oid: randomUUID(), username: "visitor@axellc.com", name: "Visitor", extra: { acct: 1 } };
    const bearer = await standIn.accessToken(
      TENANT_AXE,
      { clientId: CLIENT_AXE, appIdUri: "https://axe.axelabs.ai/frame/mcp", version: 2 },
      CONNECTOR_CLIENT,
      guest,
    );
    const [before] = await db.sql`select count(*)::int as n from meta.audit_log`;
    let sent = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (sent < 2_000) {
          sent++;
          const response = await rpc(mcpUrl, INIT, { authorization: `Bearer ${bearer}` });
          await response.arrayBuffer();
          expect(response.status).toBe(403);
        }
      }),
    );
    await running.frame.stop(); // the current minute's tally is written on the way out
    running = undefined;
    const rows = await db.sql<{ who: string; reason: string; outcome: string; detail: any }[]>`
      select who, reason, outcome, detail from meta.audit_log where seq > ${before!.n} order by seq`;
    expect(rows.length).toBeLessThanOrEqual(2); // one per minute; the run may cross a minute
    expect(
      rows.every((r) => r.who === `${TENANT_AXE}/${guest.oid}` && r.reason === "guest" && r.outcome === "denied"),
    ).toBe(true);
    expect(rows.reduce((sum, r) => sum + r.detail.count, 0)).toBe(2_000);
    const verify = await import("../../src/frame/store/audit-verify.ts");
    expect((await verify.verifyAudit(db.sql)).filter((r) => r.broken)).toEqual([]);
    await db.drop();
  }, 120_000);
});
