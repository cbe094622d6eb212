/**
 * What a caller can send that frame must refuse with a tool error or a JSON-RPC -32602 that says
 * why, never "failed inside frame", never a silent drop, never a write: the holes of issues 13 and
 * 21, each reproduced against a real serve, real Postgres and the MCP SDK client.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { verifyAudit } from "../../../src/frame/store/audit-verify.ts";
import { runCli } from "../../helpers/cli.ts";
import { waitFor } from "../../helpers/wait.ts";
import { json, proxyStamp, rpc } from "../harness.ts";
import { call, type DataFrame, PEOPLE, startDataFrame } from "./harness.ts";

let running: DataFrame;
let admin: Client;
let writer: Client;
let reader: Client;
let adminToken: string;

beforeAll(async () => {
  running = await startDataFrame();
  adminToken = await running.token("axe", "admin");
  [admin, writer, reader] = [
    await running.client("axe", "admin"),
    await running.client("axe", "writer"),
    await running.client("axe", "reader"),
  ];
  expect((await call(admin, "define_collection", PEOPLE)).isError).toBe(false);
  expect(
    (
      await call(admin, "define_collection", {
        name: "events",
        fields: { title: { type: "string", required: true }, day: { type: "date" }, at: { type: "datetime" } },
      })
    ).isError,
  ).toBe(false);
});
afterAll(async () => {
  await running?.close();
});

const recordCount = async () => Number((await running.db.sql`select count(*)::int as n from entity_axe.records`)[0]!.n);

/** The audit rows of one request id, once the sink has written at least one (bounded wait). */
async function auditRowsOf(requestId: string): Promise<Array<Record<string, any>>> {
  await waitFor(`an audit row for request ${requestId}`, async () => {
    const rows = await running.db.sql`select * from entity_axe.audit_log where request_id = ${requestId}`;
    return rows.length > 0;
  });
  await Bun.sleep(100); // a second row, if one were coming, comes in the same burst
  return [...(await running.db.sql`select * from entity_axe.audit_log where request_id = ${requestId}`)];
}

/** A raw tools/call with its own request id, as the SDK would send it. */
async function rawCall(name: string, args: unknown, requestId = randomUUID()) {
  const body = { jsonrpc: "2.0", id: 7, method: "tools/call", params: { name, arguments: args } };
  const response = await rpc(running.mcpUrl, body, {
    authorization: `Bearer ${adminToken}`,
    "x-request-id": requestId,
    ...proxyStamp(running.config),
  });
  return { status: response.status, body: await json(response), requestId };
}

function nested(depth: number): unknown {
  let value: unknown = "x";
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

const expectToolError = (outcome: { isError: boolean; text: string }, pattern: RegExp) => {
  expect(outcome.text).not.toMatch(/failed inside frame/);
  expect(outcome.isError).toBe(true);
  expect(outcome.text).toMatch(pattern);
};

describe("tool inputs are exactly what the schema says (issue 13.2)", () => {
  test("an unknown key is refused with a tool error naming it, nothing is written, one invalid_input audit row", async () => {
    const before = await recordCount();
    const { body, requestId } = await rawCall("create_record", {
      collection: "people",
      values: { name: "x" },
      note: "extra",
    });
    expect(body.result.isError).toBe(true);
    expect(body.result.content[0].text).toMatch(/note/);
    expect(await recordCount()).toBe(before);
    const rows = await auditRowsOf(requestId);
    expect(rows.map((r) => [r.tool, r.outcome, r.reason])).toEqual([["create_record", "error", "invalid_input"]]);
  });

  test("a body nested deeper than 64 is refused before any tool runs, says so, writes nothing and is audited", async () => {
    const before = await recordCount();
    const { status, body, requestId } = await rawCall("create_record", {
      collection: "people",
      values: { name: "x" },
      note: nested(20_000),
    });
    expect(status).toBeLessThan(500);
    expect(body.error.code).toBe(-32602);
    expect(body.error.message).toMatch(/nested deeper than 64/);
    expect(await recordCount()).toBe(before);
    const rows = await auditRowsOf(requestId);
    expect(rows.map((r) => [r.outcome, r.reason])).toEqual([["error", "too_deep"]]);
    const shallow = await rawCall("create_record", { collection: "people", values: { name: "x" }, note: nested(30) });
    expect(shallow.body.result.isError).toBe(true); // within the depth limit: the unknown key is the problem
  });

  test("a refused body naming a tool with a NUL in it is audited, and takes no other caller's row with it", async () => {
    // Postgres refuses U+0000 in text: one such row used to fail its whole audit batch (up to 100 rows).
    const readerToken = await running.token("axe", "reader");
    const poisoned = Array.from({ length: 10 }, () => randomUUID());
    const denied = Array.from({ length: 10 }, () => randomUUID());
    await Promise.all([
      ...poisoned.map((requestId) =>
        rpc(
          running.mcpUrl,
          { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "create_record\u0000", arguments: 5 } },
          { authorization: `Bearer ${adminToken}`, "x-request-id": requestId, ...proxyStamp(running.config) },
        ).then((r) => r.text()),
      ),
      ...denied.map((requestId) =>
        rpc(
          running.mcpUrl,
          { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "delete_record", arguments: { id: "x" } } },
          { authorization: `Bearer ${readerToken}`, "x-request-id": requestId, ...proxyStamp(running.config) },
        ).then((r) => r.text()),
      ),
    ]);
    const ids = [...poisoned, ...denied];
    await waitFor("every request's audit row", async () => {
      const [row] = await running.db.sql`
        select count(*)::int as n from entity_axe.audit_log where request_id in ${running.db.sql(ids)}`;
      return row!.n === ids.length;
    });
    const rows = await running.db.sql`
      select tool, outcome, reason from entity_axe.audit_log where request_id in ${running.db.sql(poisoned)}`;
    expect(rows.map((r) => [r.tool, r.outcome, r.reason])).toEqual(
      poisoned.map(() => [null, "error", "invalid_params"]),
    );
  });

  test("wrong argument shapes get -32602 with one readable line (issue 21.6)", async () => {
    for (const args of [[1, 2], null, "values", 5]) {
      const { body } = await rawCall("get_record", args);
      expect(body.error?.code).toBe(-32602);
      expect(body.error.message).not.toContain("\n");
      expect(body.error.message).toMatch(/arguments/);
      expect(body.error.message.length).toBeLessThan(300);
    }
  });
});

describe("prototype names are never fields (issues 13.3 and 21.3, 21.8)", () => {
  test("values named after Object.prototype members are refused and nothing is written", async () => {
    const before = await recordCount();
    for (const values of [
      { name: "Bob", constructor: { a: 1 }, toString: [1, 2, 3] },
      { name: "Bob", valueOf: { nested: true } },
      { name: "Bob", hasOwnProperty: "x" },
      JSON.parse('{"name":"Bob","__proto__":{"polluted":true}}'),
    ])
      expectToolError(await call(writer, "create_record", { collection: "people", values }), /not a field|reserved/);
    expect(await recordCount()).toBe(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test("filters named after prototype members are refused, never dropped or matched", async () => {
    await call(writer, "create_record", { collection: "people", values: { name: "Proto Filter" } });
    for (const filters of [JSON.parse('{"__proto__":"x"}'), { toString: "x" }, { constructor: "x" }])
      expectToolError(await call(reader, "search_records", { collection: "people", filters }), /not a field|reserved/);
  });

  test("define_collection refuses reserved field names and names the reason", async () => {
    const proto = await call(admin, "define_collection", {
      name: "proto_named",
      fields: JSON.parse('{"__proto__":{"type":"string"}}'),
    });
    expectToolError(proto, /__proto__/);
    expect(proto.text).not.toMatch(/1 to 100 fields/);
    for (const name of ["constructor", "prototype"])
      expectToolError(
        await call(admin, "define_collection", { name: "proto_named", fields: { [name]: { type: "string" } } }),
        new RegExp(`${name}.*reserved`),
      );
  });

  test("a row planted by the owner with prototype-named keys does not fail search for other readers", async () => {
    await call(admin, "define_collection", { name: "planted", fields: { title: { type: "string" } } });
    const good = (await call(writer, "create_record", { collection: "planted", values: { title: "fine" } })).data;
    const bad = (await call(writer, "create_record", { collection: "planted", values: { title: "soon bad" } })).data;
    await running.db.sql`update entity_axe.records
      set data = ${running.db.sql.json({ title: "t", constructor: { a: 1 }, toString: [1, 2, 3] })} where id = ${bad.id}`;
    const page = await call(reader, "search_records", { collection: "planted" });
    expect(page.isError).toBe(false);
    expect(page.data.records.map((r: any) => r.id)).toEqual([good.id]);
    expect(page.data.unreadable).toEqual([
      { id: bad.id, problem: expect.stringMatching(/(constructor|toString) is not a field/) },
    ]);
    expectToolError(await call(reader, "get_record", { id: bad.id }), /cannot be read/);
    expect((await call(reader, "get_record", { id: good.id })).isError).toBe(false);
    // The operator finds it with doctor --records (the real CLI, the owner connection).
    const doctor = await runCli(["doctor", "--records", "--config", running.config.dir]);
    expect(doctor.stdout).toMatch(/FAIL {2}records:axe +1 of \d+ records do not decode/);
    expect(doctor.stdout).toContain(`${bad.id} (planted): record ${bad.id} cannot be read`);
    expect(doctor.stdout).toMatch(/OK +records:labs +\d+ records read/);
    // The writer can still delete it: its id was shown.
    expect((await call(writer, "delete_record", { id: bad.id })).isError).toBe(false);
  });

  test("a history version changed outside frame is reported in its place; the other versions still read", async () => {
    await call(admin, "define_collection", { name: "kept", fields: { title: { type: "string" } } });
    const made = (await call(writer, "create_record", { collection: "kept", values: { title: "one" } })).data;
    expect(
      (await call(writer, "update_record", { id: made.id, expected_version: 1, values: { title: "two" } })).isError,
    ).toBe(false);
    expect(
      (await call(writer, "update_record", { id: made.id, expected_version: 2, values: { title: "three" } })).isError,
    ).toBe(false);
    // The owner (or anyone with a superuser's hands) gets past the append-only trigger
    await running.db.sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`update entity_axe.record_versions set data = ${tx.json({ title: "t", toString: [1] })}
        where record_id = ${made.id} and version = 2`;
    });
    const history = await call(reader, "record_history", { id: made.id });
    expect(history.isError).toBe(false);
    expect(history.data.versions.map((v: any) => [v.version, v.values?.title ?? null])).toEqual([
      [1, "one"],
      [2, null],
      [3, "three"],
    ]);
    expect(history.data.versions[1].unreadable).toMatch(/toString is not a field/);
    expect(history.data.versions[1].changed_by).toBe(history.data.versions[0].changed_by);
  });
});

describe("other requests with the wrong shape (issue 21.6, the same hole elsewhere)", () => {
  test("resources/read without a string uri gets -32602 with one line", async () => {
    for (const params of [{ uri: 5 }, { uri: ["frame://collections/people"] }, null, "x"]) {
      const response = await rpc(
        running.mcpUrl,
        { jsonrpc: "2.0", id: 3, method: "resources/read", params },
        { authorization: `Bearer ${adminToken}` },
      );
      const body = await json(response);
      expect(body.error?.code).toBe(-32602);
      expect(body.error.message).toMatch(/uri/);
      expect(body.error.message).not.toContain("\n");
    }
  });
});

describe("strings, dates and redefinitions (issue 21)", () => {
  test("lone UTF-16 surrogates are refused with a tool error naming the field (21.1)", async () => {
    const before = await recordCount();
    const created = (await call(writer, "create_record", { collection: "people", values: { name: "Sur Rogate" } }))
      .data;
    expectToolError(
      await call(writer, "create_record", { collection: "people", values: { name: "\ud800" } }),
      /values\.name.*surrogate/,
    );
    expectToolError(
      await call(writer, "update_record", { id: created.id, expected_version: 1, values: { notes: "a\udc00" } }),
      /values\.notes.*surrogate/,
    );
    expectToolError(
      await call(reader, "search_records", { collection: "people", filters: { name: "\ud800" } }),
      /filters\.name.*surrogate/,
    );
    expectToolError(
      await call(admin, "define_collection", { ...PEOPLE, description: "\ud800" }),
      /description.*surrogate/,
    );
    expectToolError(
      await call(writer, "create_record", { collection: "people", values: { name: "P", email: "\ud800" } }),
      /values\.email.*surrogate/,
    );
    expect(await recordCount()).toBe(before + 1);
    const replacement = await call(reader, "search_records", { collection: "people", filters: { email: "\ufffd" } });
    expect(replacement.data.records).toEqual([]);
  });

  test("query_audit_log refuses out-of-range and impossible since values (21.2, 21.5)", async () => {
    for (const since of [
      "0000-01-01",
      "+010000-01-01T00:00:00Z",
      "99999",
      "-000001-01-01T00:00:00Z",
      "2026-02-30",
      "2026-02-31T00:00:00Z",
    ])
      expectToolError(await call(admin, "query_audit_log", { since }), /since/);
    expect((await call(admin, "query_audit_log", { since: "2026-01-31" })).isError).toBe(false);
    expect((await call(admin, "query_audit_log", { since: "2026-01-31T09:30:00+02:00" })).isError).toBe(false);
  });

  test("impossible dates are refused for date, datetime and PII date fields (21.5)", async () => {
    await call(admin, "define_collection", {
      name: "born",
      fields: { day: { type: "date", pii: true }, seen: { type: "datetime" } },
    });
    for (const [collection, values] of [
      ["events", { title: "t", day: "2026-02-30" }],
      ["events", { title: "t", day: "2026-02-31" }],
      ["events", { title: "t", day: "2025-13-01" }],
      ["events", { title: "t", at: "2026-02-30T10:00:00Z" }],
      ["events", { title: "t", at: "2026-01-01T24:30:00Z" }],
      ["born", { day: "2026-02-29" }],
    ] as const)
      expectToolError(await call(writer, "create_record", { collection, values }), /expected/);
    expect((await call(writer, "create_record", { collection: "born", values: { day: "2024-02-29" } })).isError).toBe(
      false,
    );
  });

  test("define_collection refuses tightening: required, a lower max_length, a new required field on records (21.4)", async () => {
    await call(admin, "define_collection", {
      name: "tight",
      fields: { a: { type: "string", max_length: 100 }, b: { type: "string" } },
    });
    await call(writer, "create_record", { collection: "tight", values: { a: "x".repeat(80) } });
    for (const [fields, pattern] of [
      [{ a: { type: "string", max_length: 100, required: true }, b: { type: "string" } }, /a.*required/],
      [{ a: { type: "string", max_length: 50 }, b: { type: "string" } }, /a.*max_length/],
      [{ a: { type: "string", max_length: 100 }, b: { type: "string", max_length: 10 } }, /b.*max_length/],
      [
        { a: { type: "string", max_length: 100 }, b: { type: "string" }, c: { type: "string", required: true } },
        /c.*required/,
      ],
    ] as const)
      expectToolError(await call(admin, "define_collection", { name: "tight", fields }), pattern);
    // Relaxing and adding optional fields still work.
    const relaxed = await call(admin, "define_collection", {
      name: "tight",
      fields: { a: { type: "string", max_length: 200 }, b: { type: "string" }, c: { type: "integer" } },
    });
    expect(relaxed.isError).toBe(false);
    // A new required field is fine while a collection holds no records.
    await call(admin, "define_collection", { name: "empty", fields: { a: { type: "string" } } });
    const required = await call(admin, "define_collection", {
      name: "empty",
      fields: { a: { type: "string" }, b: { type: "string", required: true } },
    });
    expect(required.isError).toBe(false);
  });

  test("get_record reads a record with a field added after it first read the collection", async () => {
    await call(admin, "define_collection", { name: "grows", fields: { a: { type: "string" } } });
    const created = (await call(writer, "create_record", { collection: "grows", values: { a: "x" } })).data;
    expect((await call(reader, "get_record", { id: created.id })).data.values).toEqual({ a: "x" });
    await call(admin, "define_collection", {
      name: "grows",
      fields: { a: { type: "string" }, b: { type: "integer" } },
    });
    await call(writer, "update_record", { id: created.id, expected_version: 1, values: { b: 2 } });
    const read = await call(reader, "get_record", { id: created.id });
    expect(read.isError).toBe(false);
    expect(read.data.values).toEqual({ a: "x", b: 2 });
  });

  test("afterwards every collection still lists, searches and the audit chains verify", async () => {
    const { collections } = (await call(reader, "list_collections")).data;
    for (const c of collections) {
      const page = await call(reader, "search_records", { collection: c.name, limit: 100 });
      expect(page.isError).toBe(false);
    }
    await running.frame.stop().catch(() => {}); // flushes the audit sink
    for (const report of await verifyAudit(running.db.sql)) expect(report.broken).toBeUndefined();
  });
});
