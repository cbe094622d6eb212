import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../../../src/db/connect.ts";
import { databaseRoles } from "../../../src/frame/store/entities.ts";
import { APP_PASSWORD_FILE } from "../../../src/frame/store/open-data.ts";
import { entityRole } from "../../../src/frame/store/with-entity.ts";
import { call, type DataFrame, PEOPLE, startDataFrame } from "./harness.ts";

let running: DataFrame | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

describe("two entities of one customer", () => {
  test("every tool of one, given the other's ids, names and values, finds nothing and changes nothing", async () => {
    running = await startDataFrame();
    const labs = await running.client("labs", "admin");
    await call(labs, "define_collection", PEOPLE);
    await call(labs, "define_collection", { name: "secrets", fields: { code: { type: "string", searchable: true } } });
    const theirs = (
      await call(labs, "create_record", {
        collection: "people",
        values: { name: "Lab Person", email: "lab@axe-labs.dev", age: 30 },
      })
    ).data;
    const secret = (await call(labs, "create_record", { collection: "secrets", values: { code: "launch" } })).data;

    const axe = await running.client("axe", "admin");
    await call(axe, "define_collection", PEOPLE);
    await call(axe, "create_record", { collection: "people", values: { name: "Axe Person", email: "me@axellc.com" } });

    for (const id of [theirs.id, secret.id]) {
      for (const [tool, args] of [
        ["get_record", { id }],
        ["update_record", { id, expected_version: 1, values: { name: "taken" } }],
        ["delete_record", { id }],
        ["record_history", { id }],
      ] as const) {
        const result = await call(axe, tool, args);
        expect(result.isError).toBe(true);
        expect(result.text).toMatch(/no record .* in this entity/);
      }
    }
    expect((await call(axe, "search_records", { collection: "secrets", query: "launch" })).text).toMatch(
      /no collection named "secrets"/,
    );
    expect((await call(axe, "create_record", { collection: "secrets", values: { code: "x" } })).text).toMatch(
      /no collection named "secrets"/,
    );
    expect(
      (await call(axe, "search_records", { collection: "people", filters: { email: "lab@axe-labs.dev" } })).data
        .records,
    ).toEqual([]);
    expect((await call(axe, "search_records", { collection: "people", filters: { age: 30 } })).data.records).toEqual(
      [],
    );
    expect((await call(axe, "search_records", { collection: "people", query: "lab" })).data.records).toEqual([]);
    const everything = (await call(axe, "search_records", { collection: "people", limit: 100 })).data.records;
    expect(everything.map((r: any) => r.values.name)).toEqual(["Axe Person"]);
    expect((await call(axe, "list_collections")).data.collections.map((c: any) => c.name)).toEqual(["people"]);
    const audit = (await call(axe, "query_audit_log", { limit: 200 })).data.rows as Array<{ who: string }>;
    const labsWho = (await running.db.sql`select distinct who from entity_labs.audit_log`).map((r) => r.who);
    expect(labsWho.length).toBeGreaterThan(0);
    for (const row of audit) expect(labsWho).not.toContain(row.who);

    const [still] = await running.db
      .sql`select version, deleted_at, data from entity_labs.records where id = ${theirs.id}`;
    expect(still).toMatchObject({ version: 1, deleted_at: null, data: { name: "Lab Person", age: 30 } });
  });

  test("raw SQL under one entity's role on the other's schema is denied", async () => {
    running = await startDataFrame();
    const password = readFileSync(join(running.config.paths.secrets, APP_PASSWORD_FILE), "utf8").trim();
    const roles = await databaseRoles(running.db.sql);
    const app = connect({ ...running.db.target, user: roles.app, password }, { max: 1 });
    try {
      const axeRole = await entityRole(app, "axe");
      const attempt = (query: string) =>
        app.begin(async (tx) => {
          await tx`select set_config('role', ${axeRole}, true)`;
          return tx.unsafe(query); // deliberately raw: the point is what the role allows, whatever the SQL
        });
      await expect(attempt("select * from entity_labs.records")).rejects.toThrow(
        /permission denied for schema entity_labs/,
      );
      await expect(attempt("select * from entity_labs.audit_log")).rejects.toThrow(/permission denied/);
      await expect(
        attempt(
          "insert into entity_labs.collections (name, definition, created_by, updated_by) values ('x', '{}', 'a', 'a')",
        ),
      ).rejects.toThrow(/permission denied/);
      await expect(attempt("select wrapped from meta.data_keys")).rejects.toThrow(/permission denied/);
      await expect(attempt("select count(*) from entity_axe.records")).resolves.toBeDefined();
    } finally {
      await app.end({ timeout: 5 });
    }
  });
});
