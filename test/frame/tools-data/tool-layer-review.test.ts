/**
 * The fourth review (decision 73): an attacker who knows the code, holding a token of one entity,
 * against the tool layer behind the token mapping. Real serve, real Postgres, the MCP SDK client.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { json, rpc } from "../harness.ts";
import { call, type DataFrame, PEOPLE, startDataFrame } from "./harness.ts";

let running: DataFrame;
let labs: Client;
let axe: Client;
let labsRecord: { id: string };

beforeAll(async () => {
  running = await startDataFrame();
  labs = await running.client("labs", "admin");
  axe = await running.client("axe", "admin");
  for (const client of [labs, axe]) expect((await call(client, "define_collection", PEOPLE)).isError).toBe(false);
  expect(
    (await call(labs, "define_collection", { name: "secrets", fields: { code: { type: "string", searchable: true } } }))
      .isError,
  ).toBe(false);
  labsRecord = (
    await call(labs, "create_record", {
      collection: "people",
      values: { name: "Lab Person", email: "lab@axe-labs.dev", notes: "launch codes" },
    })
  ).data as { id: string };
});
afterAll(async () => {
  await running?.close();
});

describe("the tool layer, attacked from another entity", () => {
  test("crafted resource URIs never reach another entity's collections, and the errors name nothing of it", async () => {
    const reader = await running.client("axe", "reader");
    for (const uri of [
      "frame://collections/secrets",
      "frame://collections/SECRETS",
      "frame://collections/secrets%00",
      "frame://collections/secrets/",
      "frame://collections/secrets?entity=labs",
      "frame://collections/../labs/secrets",
      "frame://collections/entity_labs.collections",
      'frame://collections/"entity_labs".secrets',
      "frame://collections/people'; select * from entity_labs.records; --",
      "FRAME://collections/secrets",
      "frame://collections//secrets",
    ]) {
      const error = await reader.readResource({ uri }).then(
        () => undefined,
        (e: Error) => e.message,
      );
      expect(error, uri).toBeDefined();
      expect(error!).toMatch(/no collection named|unknown resource/);
      expect(error!).not.toMatch(/"code"|launch|Lab Person|failed inside/);
    }
    expect((await reader.listResources()).resources.map((r) => r.uri)).toEqual(["frame://collections/people"]);
  });

  test("prepared statements shared on the pipe: interleaved get_record and search of both entities see their own rows only", async () => {
    const axeRecord = (
      await call(axe, "create_record", { collection: "people", values: { name: "Axe Person", notes: "launch codes" } })
    ).data as { id: string };
    const readers = { labs: await running.client("labs", "reader"), axe: await running.client("axe", "reader") };
    const own = { labs: labsRecord.id, axe: axeRecord.id };
    const calls = Array.from({ length: 48 }, async (_, i) => {
      const me = i % 2 ? "axe" : "labs";
      const other = i % 2 ? "labs" : "axe";
      const client = readers[me];
      if (i % 3 === 0) {
        const mine = await call(client, "get_record", { id: own[me] });
        expect(mine.data.id).toBe(own[me]);
        const theirs = await call(client, "get_record", { id: own[other].toUpperCase() });
        expect(theirs.text).toMatch(/no record .* in this entity/);
        return;
      }
      if (i % 3 === 1) {
        const found = await call(client, "search_records", { collection: "people", query: "launch" });
        expect(found.data.records.map((r: { id: string }) => r.id)).toEqual([own[me]]);
        return;
      }
      const history = await call(client, "record_history", { id: own[other] });
      expect(history.text).toMatch(/no record .* in this entity/);
    });
    await Promise.all(calls);
  });

  test("a reader's JSON-RPC batch of writes is denied call by call, and nothing is written", async () => {
    const token = await running.token("axe", "reader");
    const before = await running.db.sql`select count(*)::int as n from entity_axe.records`;
    const writes = [
      ["create_record", { collection: "people", values: { name: "planted" } }],
      ["define_collection", { name: "planted", fields: { a: { type: "string" } } }],
      ["update_record", { id: labsRecord.id, expected_version: 1, values: { name: "x" } }],
      ["delete_record", { id: labsRecord.id }],
    ] as const;
    const response = await rpc(
      running.mcpUrl,
      writes.map(([name, args], i) => ({
        jsonrpc: "2.0",
        id: i + 1,
        method: "tools/call",
        params: { name, arguments: args },
      })),
      { authorization: `Bearer ${token}` },
    );
    const body = (await json(response)) as unknown;
    const answers = (Array.isArray(body) ? body : [body]) as Array<Record<string, any>>;
    for (const answer of answers) {
      const denied =
        answer.result?.isError === true && /needs the (writer|admin) role/.test(answer.result.content[0].text);
      const refused = answer.error !== undefined;
      expect(denied || refused).toBe(true);
    }
    const after = await running.db.sql`select count(*)::int as n from entity_axe.records`;
    expect(after[0]!.n).toBe(before[0]!.n);
    expect(
      (await running.db.sql`select count(*)::int as n from entity_axe.collections where name = 'planted'`)[0]!.n,
    ).toBe(0);
    const [labsRow] = await running.db
      .sql`select version, deleted_at from entity_labs.records where id = ${labsRecord.id}`;
    expect(labsRow).toMatchObject({ version: 1, deleted_at: null });
  });

  test("concurrent writers of two entities: each write's audit row is in its own entity's log, naming that entity and its caller", async () => {
    const writers = {
      labs: { client: await running.client("labs", "writer") },
      axe: { client: await running.client("axe", "writer") },
    };
    const who = {
      labs: (await call(writers.labs.client, "whoami")).data.principal as string,
      axe: (await call(writers.axe.client, "whoami")).data.principal as string,
    };
    const made = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const me = i % 2 ? "axe" : "labs";
        const created = await call(writers[me].client, "create_record", {
          collection: "people",
          values: { name: `w${i}` },
        });
        expect(created.isError).toBe(false);
        const updated = await call(writers[me].client, "update_record", {
          id: created.data.id,
          expected_version: 1,
          values: { name: `w${i}b` },
        });
        expect(updated.isError).toBe(false);
        return { me, id: created.data.id as string };
      }),
    );
    for (const entity of ["labs", "axe"] as const) {
      const schema = `entity_${entity}`;
      const rows = await running.db.sql`
        select who, entity, tool, detail from ${running.db.sql(schema)}.audit_log
        where tool in ('create_record', 'update_record') and who = ${who[entity]}`;
      const mine = made.filter((m) => m.me === entity).map((m) => m.id);
      expect(rows.length).toBe(mine.length * 2);
      for (const row of rows) {
        expect(row.entity).toBe(entity);
        expect(mine).toContain(row.detail.record);
      }
      const strangers = await running.db.sql`
        select count(*)::int as n from ${running.db.sql(schema)}.audit_log
        where who = ${who[entity === "labs" ? "axe" : "labs"]} or entity <> ${entity}`;
      expect(strangers[0]!.n).toBe(0);
    }
  });
});
