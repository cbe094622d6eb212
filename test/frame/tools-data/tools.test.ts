import { afterEach, describe, expect, test } from "bun:test";
import { verifyAudit } from "../../../src/frame/store/audit-verify.ts";
import { waitFor } from "../../helpers/wait.ts";
import { rpc } from "../harness.ts";
import { call, type DataFrame, PEOPLE, startDataFrame } from "./harness.ts";

let running: DataFrame | undefined;

/** Waits (bounded) until the entity's audit log holds `n` rows. */
async function auditRows(frame: DataFrame, n: number): Promise<void> {
  await waitFor(`the audit log to reach ${n} rows`, async () => {
    const [row] = await frame.db.sql`select count(*)::int as n from entity_axe.audit_log`;
    return row!.n >= n;
  });
}
afterEach(async () => {
  await running?.close();
  running = undefined;
});

describe("data tools over MCP", () => {
  test("tools/list shows every data tool with honest annotations", async () => {
    running = await startDataFrame();
    const reader = await running.client("axe", "reader");
    const { tools } = await reader.listTools();
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    for (const name of [
      "list_collections",
      "define_collection",
      "create_record",
      "get_record",
      "update_record",
      "delete_record",
      "search_records",
      "record_history",
      "query_audit_log",
    ])
      expect(byName[name]?.outputSchema).toBeDefined();
    expect(byName.get_record!.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
    expect(byName.search_records!.annotations?.readOnlyHint).toBe(true);
    expect(byName.delete_record!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(byName.create_record!.annotations).toMatchObject({
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: false,
    });
  });

  test("admin defines, writer writes, reader reads; readers cannot write and writers cannot define", async () => {
    running = await startDataFrame();
    const [admin, writer, reader] = [
      await running.client("axe", "admin"),
      await running.client("axe", "writer"),
      await running.client("axe", "reader"),
    ];
    expect((await call(writer, "define_collection", PEOPLE)).text).toMatch(/needs the admin role/);
    const defined = await call(admin, "define_collection", PEOPLE);
    expect(defined.isError).toBe(false);
    expect(defined.data.fields.email).toMatchObject({ type: "string", pii: true, searchable: false });
    const created = await call(writer, "create_record", {
      collection: "people",
      values: { name: "Ann Lee", email: "ann@example.com", age: 41 },
    });
    expect(created.data).toMatchObject({ version: 1, values: { name: "Ann Lee", email: "ann@example.com", age: 41 } });
    const id = created.data.id as string;
    const denied = await call(reader, "create_record", { collection: "people", values: { name: "Eve" } });
    expect(denied).toMatchObject({ isError: true });
    expect(denied.text).toMatch(/needs the writer role; you are reader/);
    expect((await call(reader, "get_record", { id })).data.values.email).toBe("ann@example.com");
    expect(
      (
        await call(reader, "search_records", { collection: "people", filters: { email: "ANN@example.com" } })
      ).data.records.map((r: any) => r.id),
    ).toEqual([id]);
    expect((await call(reader, "search_records", { collection: "people", query: "lee" })).data.records.length).toBe(1);
    const updated = await call(writer, "update_record", { id, expected_version: 1, values: { notes: "vip" } });
    expect(updated.data.version).toBe(2);
    const stale = await call(writer, "update_record", { id, expected_version: 1, values: { notes: "late" } });
    expect(stale.isError).toBe(true);
    expect(stale.text).toMatch(/is at version 2, not 1.*expected_version 2/);
    expect((await call(writer, "delete_record", { id, expected_version: 2 })).data.version).toBe(3);
    expect((await call(reader, "get_record", { id })).text).toMatch(/no record .* in this entity/);
    expect((await call(reader, "record_history", { id })).data.versions.map((v: any) => v.op)).toEqual([
      "create",
      "update",
      "delete",
    ]);
    expect((await call(reader, "list_collections")).data.collections.map((c: any) => c.name)).toEqual(["people"]);
    expect((await call(writer, "query_audit_log")).text).toMatch(/needs the admin role/);
  });

  test("every call and every refusal is an audit row, chained, with no PII; admins can query them", async () => {
    running = await startDataFrame();
    const [admin, reader] = [await running.client("axe", "admin"), await running.client("axe", "reader")];
    await call(admin, "define_collection", PEOPLE);
    const ann = await call(admin, "create_record", {
      collection: "people",
      values: { name: "Ann", email: "secret-ann@example.com" },
    });
    await call(admin, "search_records", { collection: "people", filters: { email: "secret-ann@example.com" } });
    await call(reader, "create_record", {
      collection: "people",
      values: { name: "Eve", email: "secret-eve@example.com" },
    });
    const unauthenticated = await rpc(running.mcpUrl, { jsonrpc: "2.0", id: 1, method: "tools/list" });
    expect(unauthenticated.status).toBe(401);
    await auditRows(running, 4); // the server records audit rows after answering
    const log = await call(admin, "query_audit_log", { limit: 10 });
    const rows = log.data.rows as Array<Record<string, unknown>>;
    expect(rows.map((r) => [r.tool, r.outcome])).toEqual([
      ["create_record", "denied"],
      ["search_records", "ok"],
      ["create_record", "ok"],
      ["define_collection", "ok"],
    ]);
    for (const row of rows) expect(row.args_digest).toMatch(/^[0-9a-f]{64}$/);
    // A change names what it made: the record and its version, the collection and its version.
    expect(rows.map((r) => r.detail)).toEqual([
      null,
      null,
      { record: ann.data.id, version: 1 },
      { collection: "people", version: 1 },
    ]);
    // The digest covers the call's shape, not its values: two creates with other PII digest alike.
    await call(admin, "create_record", {
      collection: "people",
      values: { name: "Bob", email: "secret-bob@example.com" },
    });
    await auditRows(running, 6);
    const creates = await running.db
      .sql`select args_digest from entity_axe.audit_log where tool = 'create_record' and outcome = 'ok' order by seq`;
    expect(creates.length).toBe(2);
    expect(creates[0]!.args_digest).toBe(creates[1]!.args_digest);
    const raw = JSON.stringify(
      await running.db.sql`select * from entity_axe.audit_log union all select * from meta.audit_log`,
    );
    expect(raw).not.toContain("secret-");
    // meta holds the entities' creation and the tokens' issue; the 401 joins its minute's refusal tally
    // (test/frame/audit-refusals.test.ts)
    const metaRows = await running.db.sql`select who, tool, entity, outcome from meta.audit_log order by seq`;
    expect([...metaRows]).toEqual([
      { who: "frame", tool: "entity create", entity: "axe", outcome: "ok" },
      { who: "frame", tool: "entity create", entity: "labs", outcome: "ok" },
      ...metaRows.slice(2).map(() => ({ who: "frame", tool: "token issue", entity: "axe", outcome: "ok" })),
    ]);
    const reports = await verifyAudit(running.db.sql);
    expect(reports.every((r) => r.broken === undefined)).toBe(true);
    expect(reports.find((r) => r.log === "axe")!.rows).toBeGreaterThanOrEqual(5);
  });

  test("bad input gets a tool error that says how to fix it, never a 500, and writes nothing", async () => {
    running = await startDataFrame();
    const admin = await running.client("axe", "admin");
    await call(admin, "define_collection", PEOPLE);
    const meta = `'); drop table records; -- " \\ $$ %s \u2028`;
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ["create_record", { collection: "nope", values: { name: "A" } }, /no collection named "nope".*list_collections/],
      ["create_record", { collection: "people", values: { name: 7 } }, /name: expected a string, got a number/],
      [
        "create_record",
        { collection: "people", values: { name: "A", notes: "x".repeat(201) } },
        /notes: is 201 characters; at most 200/,
      ],
      [
        "create_record",
        { collection: "people", values: { name: "x".repeat(5000) } },
        /name: is 5000 characters; at most 4096/,
      ],
      ["create_record", { collection: meta, values: { [meta]: meta } }, /invalid arguments|no collection named/],
      ["get_record", { id: meta }, /record ids are UUIDs/],
      ["update_record", { id: meta, expected_version: 1, values: { name: meta } }, /record ids are UUIDs/],
      ["search_records", { collection: "people", filters: { [meta]: meta } }, /not a field of people/],
      ["search_records", { collection: "people", cursor: meta }, /cursor is not one this server gave out/],
      ["define_collection", { name: meta, fields: { a: { type: "string" } } }, /collection names are lower case/],
      ["define_collection", { name: "x", fields: { a: { type: "blob" } } }, /definition\.fields\.a\.type/],
      ["create_record", { collection: "people", values: { name: "nul\u0000" } }, /name: contains a NUL character/],
      ["search_records", { collection: "people", query: "a\u0000b" }, /NUL character/],
      ["search_records", { collection: "people", filters: { name: "a\u0000" } }, /NUL character/],
      ["query_audit_log", { who: "a\u0000" }, /NUL character/],
    ];
    for (const [tool, args, message] of cases) {
      const result = await call(admin, tool, args);
      expect(result.isError).toBe(true);
      expect(result.text).toMatch(message);
    }
    const deep = `${"[".repeat(10_000)}1${"]".repeat(10_000)}`;
    const body = `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"create_record","arguments":{"collection":"people","values":{"name":${deep}}}}}`;
    const { token } = await import("../../../src/frame/auth/service-tokens.ts").then((m) =>
      m.issueServiceToken(running!.db.sql, running!.config.paths.secrets, {
        customer: "axe",
        entity: "axe",
        role: "admin",
        name: "deep",
        expiresInMs: 60_000,
      }),
    );
    const response = await rpc(running.mcpUrl, body, { authorization: `Bearer ${token}` });
    expect(response.status).toBeLessThan(500);
    const text = await response.text();
    expect(text).toMatch(/expected a string, got an array|invalid|too deep|nest/i);
    const [records] = await running.db.sql`select count(*)::int as n from entity_axe.records`;
    const [collections] = await running.db.sql`select count(*)::int as n from entity_axe.collections`;
    expect([records!.n, collections!.n]).toEqual([0, 1]);
    const stored = await call(admin, "create_record", { collection: "people", values: { name: meta, email: meta } });
    expect(stored.data.values).toEqual({ name: meta, email: meta });
    // Metacharacters in free text are just text: they search, they do not break or widen the query.
    expect(
      (await call(admin, "search_records", { collection: "people", query: meta })).data.records.map((r: any) => r.id),
    ).toEqual([stored.data.id]);
    expect((await call(admin, "search_records", { collection: "people", query: "' or 1=1 --" })).data.records).toEqual(
      [],
    );
    expect(
      (await call(admin, "search_records", { collection: "people", filters: { email: meta } })).data.records.length,
    ).toBe(1);
    expect((await call(admin, "query_audit_log", { tool: meta, who: meta })).data.rows).toEqual([]);
  });

  test("concurrent update_record calls with the same expected version: exactly one wins", async () => {
    running = await startDataFrame();
    const admin = await running.client("axe", "admin");
    await call(admin, "define_collection", PEOPLE);
    const { data } = await call(admin, "create_record", { collection: "people", values: { name: "Ann" } });
    const writers = await Promise.all(Array.from({ length: 5 }, () => running!.client("axe", "writer")));
    const results = await Promise.all(
      writers.map((w, i) => call(w, "update_record", { id: data.id, expected_version: 1, values: { notes: `w${i}` } })),
    );
    expect(results.filter((r) => !r.isError).length).toBe(1);
    for (const r of results.filter((r) => r.isError)) expect(r.text).toMatch(/version_conflict|is at version 2/);
    expect((await call(admin, "get_record", { id: data.id })).data.version).toBe(2);
  });

  test("stopping the server writes the audit rows of the last calls before the pool closes", async () => {
    running = await startDataFrame();
    const reader = await running.client("axe", "reader");
    await Promise.all(Array.from({ length: 20 }, () => call(reader, "list_collections")));
    await running.frame.stop();
    const [row] = await running.db
      .sql`select count(*)::int as n from entity_axe.audit_log where tool = 'list_collections'`;
    expect(row!.n).toBe(20);
    running.frame.stop = async () => {}; // already stopped; close() still drops the database
  });
});
