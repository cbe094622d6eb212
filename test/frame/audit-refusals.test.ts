/**
 * Anonymous refusals are counted per reason and minute, not chained one by one: a flood of bad
 * tokens cannot fill the disk through meta.audit_log. Authenticated denials stay individual.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { rpc } from "./harness.ts";
import { call, type DataFrame, PEOPLE, startDataFrame } from "./tools-data/harness.ts";

let running: DataFrame | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
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
    expect([...sources].every((s) => /^203\.0\.113\.[0-7]$/.test(s))).toBe(true);
    for (const r of rows) expect(Date.parse(r.detail.first_at)).toBeLessThanOrEqual(Date.parse(r.detail.last_at));
    const denied = await db.sql`select who, reason from entity_axe.audit_log where outcome = 'denied'`;
    expect(denied.map((r) => r.reason)).toEqual(["role", "role"]);
    const verify = await import("../../src/frame/store/audit-verify.ts");
    const reports = await verify.verifyAudit(db.sql);
    expect(reports.filter((r) => r.broken)).toEqual([]);
    await db.drop();
  }, 120_000);
});
