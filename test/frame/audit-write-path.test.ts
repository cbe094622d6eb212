/**
 * A write and its audit row commit in one transaction: kill -9 of serve while 32 clients create and
 * update records, then every version in record_versions has exactly one audit row, and no audit row
 * claims a write that is not there.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { issueServiceToken } from "../../src/frame/auth/service-tokens.ts";
import { MAIN, runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { freePort } from "../helpers/ports.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { waitFor as waitUntil } from "../helpers/wait.ts";
import { rpc } from "./harness.ts";
import { call, type DataFrame, PEOPLE, startDataFrame } from "./tools-data/harness.ts";

let db: TestDatabase | undefined;
let servers: Bun.Subprocess[] = [];
let running: DataFrame | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
  for (const s of servers) s.kill("SIGKILL");
  await Promise.all(servers.map((s) => s.exited));
  servers = [];
  await db?.drop();
  db = undefined;
});

function spawnServe(port: number, dir: string): Bun.Subprocess {
  const child = Bun.spawn(
    [process.execPath, MAIN, "serve", "--color", "blue", "--port", String(port), "--config", dir],
    { stdout: "ignore", stderr: "pipe", env: { ...process.env, AXE_CONFIG_DIR: "", AXE_LOG_LEVEL: "error" } },
  );
  servers.push(child);
  return child;
}

/** Waits for `probe` (a server may be restarting: its errors mean "not yet"), at most 60 s. */
const waitFor = <T>(what: string, probe: () => Promise<T | undefined>) =>
  waitUntil(what, probe, { timeoutMs: 60_000, intervalMs: 50, retryErrors: true });

/** One tools/call; resolves with its structured result, rejects on any failure (the server may be gone). */
async function callTool(url: string, token: string, name: string, args: Record<string, unknown>) {
  const response = await rpc(
    url,
    { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: args } },
    { authorization: `Bearer ${token}` },
  );
  const body = (await response.json()) as { result?: { isError?: boolean; structuredContent?: any } };
  if (!body.result || body.result.isError) throw new Error(`${name} failed`);
  return body.result.structuredContent;
}

describe("audit write path", () => {
  test("kill -9 of serve under 32 writing clients: every committed write has exactly one audit row", async () => {
    db = await freshDatabase("crash");
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const dir = makeConfigDir({ database: db.target, appliance: { frame: { public_url: base } } });
    const health = async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined);
    spawnServe(port, dir);
    await waitFor("serve to answer /healthz", health);
    const { loadConfig } = await import("../../src/config/load.ts");
    const config = loadConfig({ dir });
    const { token } = await issueServiceToken(db.sql, config.paths.secrets, {
      customer: "axe",
      entity: "axe",
      role: "admin",
      name: "crash",
      expiresInMs: 3_600_000,
    });
    const url = `${base}/frame/mcp`;
    await callTool(url, token, "define_collection", {
      name: "notes",
      fields: { title: { type: "string", required: true }, owner: { type: "string", pii: true } },
    });

    let stop = false;
    const clients = Array.from({ length: 32 }, async (_, c) => {
      while (!stop) {
        try {
          const created = await callTool(url, token, "create_record", {
            collection: "notes",
            values: { title: `note ${c}`, owner: `owner${c}@axellc.com` },
          });
          let version = created.version as number;
          for (let i = 0; i < 3 && !stop; i++)
            version = (
              await callTool(url, token, "update_record", {
                id: created.id,
                expected_version: version,
                values: { title: `note ${c}.${i}` },
              })
            ).version;
        } catch {
          if (stop) return;
        }
      }
    });
    // Kill mid-stream, once plenty of writes have committed.
    await waitFor("300 committed writes", async () => {
      const [row] = await db!.sql`select count(*)::int as n from entity_axe.record_versions`;
      return row!.n >= 300 ? true : undefined;
    });
    servers[0]!.kill("SIGKILL");
    await servers[0]!.exited;
    stop = true;
    await Promise.all(clients);

    spawnServe(port, dir);
    await waitFor("serve to answer /healthz after the restart", health);

    const [versions] = await db.sql`
      select count(*) filter (where op = 'create')::int as creates, count(*) filter (where op = 'update')::int as updates
      from entity_axe.record_versions`;
    const [audited] = await db.sql`
      select count(*) filter (where tool = 'create_record')::int as creates,
             count(*) filter (where tool = 'update_record')::int as updates
      from entity_axe.audit_log where outcome = 'ok'`;
    expect(versions!.creates + versions!.updates).toBeGreaterThanOrEqual(300);
    expect(audited).toEqual(versions!);
    // Row by row: each version (record id, version) has exactly one audit row naming it.
    const mismatched = await db.sql`
      with audited as (
        select detail->>'record' as record, (detail->>'version')::int as version, count(*) as n
        from entity_axe.audit_log where tool in ('create_record', 'update_record') and outcome = 'ok'
        group by 1, 2)
      select v.record_id, v.version, a.n from entity_axe.record_versions v
      full join audited a on a.record = v.record_id::text and a.version = v.version
      where a.n is distinct from 1 or v.record_id is null`;
    expect(mismatched.length).toBe(0);

    const verify = await runCli(["audit", "verify", "--config", dir]);
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);
  }, 180_000);

  test("a write whose audit row cannot be written is rolled back, and the caller gets a tool error", async () => {
    running = await startDataFrame();
    const admin = await running.client("axe", "admin");
    await call(admin, "define_collection", PEOPLE);
    const created = await call(admin, "create_record", { collection: "people", values: { name: "Ann" } });
    const [entity] = await running.db.sql<{ role_name: string }[]>`
      select role_name from meta.entities where name = 'axe'`;
    const role = entity!.role_name;
    await running.db.sql`revoke insert on entity_axe.audit_log from ${running.db.sql(role)}`;
    const refused = [
      await call(admin, "create_record", { collection: "people", values: { name: "Bob" } }),
      await call(admin, "update_record", { id: created.data.id, expected_version: 1, values: { name: "Ann B" } }),
      await call(admin, "delete_record", { id: created.data.id }),
      await call(admin, "define_collection", { ...PEOPLE, name: "pets" }),
    ];
    for (const r of refused)
      expect([r.isError, r.text]).toEqual([
        true,
        expect.stringMatching(
          /^nothing was changed: the audit row of this call could not be written \(permission denied/,
        ),
      ]);
    const [after] = await running.db.sql`
      select (select count(*)::int from entity_axe.records) as records,
             (select version from entity_axe.records) as version,
             (select count(*)::int from entity_axe.record_versions) as versions,
             (select count(*)::int from entity_axe.collections) as collections`;
    expect(after).toEqual({ records: 1, version: 1, versions: 1, collections: 1 });
    await running.db.sql`grant insert on entity_axe.audit_log to ${running.db.sql(role)}`;
    const again = await call(admin, "create_record", { collection: "people", values: { name: "Bob" } });
    expect(again.isError).toBe(false);
    const rows = await running.db.sql<{ record: string; version: number }[]>`
      select detail->>'record' as record, (detail->>'version')::int as version from entity_axe.audit_log
      where tool = 'create_record' and outcome = 'ok' order by seq`;
    expect([...rows]).toEqual([
      { record: created.data.id, version: 1 },
      { record: again.data.id, version: 1 },
    ]);
  });
});
