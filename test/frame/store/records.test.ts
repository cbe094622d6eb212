import { afterEach, describe, expect, test } from "bun:test";
import { defineCollection } from "../../../src/frame/store/collections.ts";
import { DataStore } from "../../../src/frame/store/data-store.ts";
import { DataError } from "../../../src/frame/store/errors.ts";
import {
  createRecord,
  deleteRecord,
  getRecord,
  recordHistory,
  updateRecord,
} from "../../../src/frame/store/records.ts";
import { searchRecords } from "../../../src/frame/store/search.ts";
import { type DataFixture, dataFixture } from "./fixture.ts";

let fx: DataFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

const PEOPLE = {
  fields: {
    name: { type: "string", required: true, searchable: true },
    email: { type: "string", pii: true },
    age: { type: "integer" },
    notes: { type: "string", searchable: true, max_length: 50 },
  },
};

async function setup(): Promise<DataStore> {
  fx = await dataFixture();
  const store = new DataStore(fx.app, fx.keys);
  await store.run("axe", (tx) => defineCollection(tx, "admin", "people", PEOPLE));
  return store;
}

describe("records", () => {
  test("create, get, update with the expected version, soft delete, history", async () => {
    const store = await setup();
    const created = await store.run("axe", (tx, keys) =>
      createRecord(tx, keys, "u1", "people", { name: "Ann", email: "ann@example.com", age: 41 }),
    );
    expect(created.version).toBe(1);
    expect(created.values).toEqual({ name: "Ann", email: "ann@example.com", age: 41 });
    const got = await store.run("axe", (tx, keys) => getRecord(tx, keys, created.id));
    expect(got.values).toEqual(created.values);
    const updated = await store.run("axe", (tx, keys) =>
      updateRecord(tx, keys, "u2", created.id, 1, { age: null, notes: "vip" }),
    );
    expect(updated).toMatchObject({
      version: 2,
      updatedBy: "u2",
      values: { name: "Ann", email: "ann@example.com", notes: "vip" },
    });
    expect("age" in updated.values).toBe(false);
    const stale = store.run("axe", (tx, keys) => updateRecord(tx, keys, "u2", created.id, 1, { notes: "late" }));
    await expect(stale).rejects.toMatchObject({ reason: "version_conflict" });
    const deleted = await store.run("axe", (tx) => deleteRecord(tx, "u3", created.id));
    expect(deleted.version).toBe(3);
    await expect(store.run("axe", (tx, keys) => getRecord(tx, keys, created.id))).rejects.toMatchObject({
      reason: "not_found",
    });
    const history = await store.run("axe", (tx, keys) => recordHistory(tx, keys, created.id));
    expect(history.versions.map((v) => [v.version, v.op, v.changedBy])).toEqual([
      [1, "create", "u1"],
      [2, "update", "u2"],
      [3, "delete", "u3"],
    ]);
    expect(history.versions[0]!.values?.email).toBe("ann@example.com");
  });

  test("PII columns hold only ciphertext, and exact PII search works through the blind index", async () => {
    const store = await setup();
    const ann = await store.run("axe", (tx, keys) =>
      createRecord(tx, keys, "u", "people", { name: "Ann", email: "Ann@Example.com" }),
    );
    await store.run("axe", (tx, keys) =>
      createRecord(tx, keys, "u", "people", { name: "Bob", email: "bob@example.com" }),
    );
    const raw = await fx!.db.sql`select data::text, pii::text, blind::text, search::text from entity_axe.records`;
    const everything =
      JSON.stringify(raw) +
      JSON.stringify(await fx!.db.sql`select data::text, pii::text from entity_axe.record_versions`);
    expect(everything).not.toMatch(/example\.com/i);
    expect(raw[0]!.pii).toMatch(/"email": "v1\./);
    const found = await store.run("axe", (tx, keys) =>
      searchRecords(tx, keys, { collection: "people", filters: { email: " ann@example.COM" } }),
    );
    expect(found.records.map((r) => r.id)).toEqual([ann.id]);
    const text = await store.run("axe", (tx, keys) => searchRecords(tx, keys, { collection: "people", query: "bob" }));
    expect(text.records.map((r) => r.values.name)).toEqual(["Bob"]);
    const byPiiText = await store.run("axe", (tx, keys) =>
      searchRecords(tx, keys, { collection: "people", query: "example" }),
    );
    expect(byPiiText.records).toEqual([]);
  });

  test("a ciphertext moved to another record does not decrypt", async () => {
    const store = await setup();
    const a = await store.run("axe", (tx, keys) =>
      createRecord(tx, keys, "u", "people", { name: "A", email: "a@x.io" }),
    );
    const b = await store.run("axe", (tx, keys) =>
      createRecord(tx, keys, "u", "people", { name: "B", email: "b@x.io" }),
    );
    await fx!.db
      .sql`update entity_axe.records set pii = (select pii from entity_axe.records where id = ${a.id}) where id = ${b.id}`;
    await expect(store.run("axe", (tx, keys) => getRecord(tx, keys, b.id))).rejects.toMatchObject({
      reason: "unreadable",
    });
  });

  test("concurrent updates with the same expected version: exactly one wins", async () => {
    const store = await setup();
    const r = await store.run("axe", (tx, keys) => createRecord(tx, keys, "u", "people", { name: "Ann" }));
    const attempts = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) =>
        store.run("axe", (tx, keys) => updateRecord(tx, keys, `w${i}`, r.id, 1, { notes: `n${i}` })),
      ),
    );
    const won = attempts.filter((a) => a.status === "fulfilled");
    expect(won.length).toBe(1);
    for (const lost of attempts.filter((a) => a.status === "rejected"))
      expect((lost as PromiseRejectedResult).reason).toMatchObject({ reason: "version_conflict" });
    const [row] = await fx!.db
      .sql`select version, (select count(*)::int from entity_axe.record_versions where record_id = ${r.id}) as versions from entity_axe.records where id = ${r.id}`;
    expect(row).toEqual({ version: 2, versions: 2 });
  });

  test("search pages with a cursor and never returns more than the hard limit", async () => {
    const store = await setup();
    for (let i = 0; i < 7; i++)
      await store.run("axe", (tx, keys) => createRecord(tx, keys, "u", "people", { name: `P${i}`, age: i % 2 }));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.run("axe", (tx, keys) =>
        searchRecords(tx, keys, { collection: "people", filters: { age: 0 }, limit: 2, cursor }),
      );
      expect(page.records.length).toBeLessThanOrEqual(2);
      seen.push(...page.records.map((r) => String(r.values.name)));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(["P0", "P2", "P4", "P6"]);
    const big = await store.run("axe", (tx, keys) => searchRecords(tx, keys, { collection: "people", limit: 10_000 }));
    expect(big.records.length).toBe(7);
    await expect(
      store.run("axe", (tx, keys) => searchRecords(tx, keys, { collection: "people", cursor: "bm9wZQ" })),
    ).rejects.toMatchObject({ reason: "invalid_input" });
  });

  test("bad input is refused with a clear error and writes nothing", async () => {
    const store = await setup();
    let deep: unknown = "x";
    for (let i = 0; i < 10_000; i++) deep = [deep];
    const meta = "'; drop table records; --\\\"$$";
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ["nope", { name: "A" }, /no collection named "nope"/],
      [meta, { name: "A" }, /no collection named/],
      ["people", { name: 42 }, /name: expected a string, got a number/],
      ["people", { name: "A", age: "41" }, /age: expected a whole number/],
      ["people", { name: "A", notes: "x".repeat(51) }, /notes: is 51 characters; at most 50/],
      ["people", { name: "A", notes: deep }, /notes: expected a string, got an array/],
      ["people", { name: "A", [meta]: "x" }, /not a field of people/],
      ["people", { age: 3 }, /name: is required/],
    ];
    for (const [collection, values, message] of cases) {
      const attempt = store.run("axe", (tx, keys) => createRecord(tx, keys, "u", collection, values));
      await expect(attempt).rejects.toBeInstanceOf(DataError);
      await expect(attempt).rejects.toThrow(message);
    }
    const ok = await store.run("axe", (tx, keys) => createRecord(tx, keys, "u", "people", { name: meta, email: meta }));
    expect(ok.values).toEqual({ name: meta, email: meta });
    await expect(store.run("axe", (tx, keys) => getRecord(tx, keys, meta))).rejects.toMatchObject({
      reason: "invalid_input",
    });
    await expect(
      store.run("axe", (tx) =>
        defineCollection(tx, "a", "bad", { fields: { e: { type: "string", pii: true, searchable: true } } }),
      ),
    ).rejects.toThrow(/cannot be searchable/);
    await expect(
      store.run("axe", (tx) => defineCollection(tx, "a", "people", { fields: { name: { type: "integer" } } })),
    ).rejects.toThrow(/cannot be removed|cannot change/);
    const [count] = await fx!.db.sql`select count(*)::int as n from entity_axe.records`;
    expect(count!.n).toBe(1);
    const [collections] = await fx!.db.sql`select count(*)::int as n from entity_axe.collections`;
    expect(collections!.n).toBe(1);
  });

  test("two admins defining the same new collection at once: one defines it, the other gets a clear conflict", async () => {
    const store = await setup();
    const definition = { fields: { total: { type: "number" } } };
    let defined!: () => void;
    const firstDefined = new Promise<void>((resolve) => (defined = resolve));
    const first = store.run("axe", async (tx) => {
      const collection = await defineCollection(tx, "admin1", "orders", definition);
      defined();
      await tx`select pg_sleep(0.3)`; // still uncommitted while the second admin defines
      return collection;
    });
    const second = firstDefined.then(() =>
      store.run("axe", (tx) => defineCollection(tx, "admin2", "orders", definition)),
    );
    const attempts = await Promise.allSettled([first, second]);
    expect(attempts.filter((a) => a.status === "fulfilled").length).toBe(1);
    const lost = attempts.find((a) => a.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ reason: "version_conflict" });
  });
});
