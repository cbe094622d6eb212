import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { DataKeyCache } from "../../../src/frame/crypto/data-keys.ts";
import { KeyError } from "../../../src/frame/crypto/errors.ts";
import { MasterKeyring, newMasterKeyText } from "../../../src/frame/crypto/master-key.ts";
import { rotateMasterKey } from "../../../src/frame/crypto/rotate.ts";
import { defineCollection } from "../../../src/frame/store/collections.ts";
import { DataStore } from "../../../src/frame/store/data-store.ts";
import { ensureEntity } from "../../../src/frame/store/entities.ts";
import { createRecord, getRecord } from "../../../src/frame/store/records.ts";
import { searchRecords } from "../../../src/frame/store/search.ts";
import { writeSecretFile } from "../../../src/lib/secret-file.ts";
import { type DataFixture, dataFixture } from "./fixture.ts";

let fx: DataFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

async function seeded() {
  fx = await dataFixture();
  const serving = new DataStore(fx.app, fx.keys);
  const ids: string[] = [];
  for (const entity of ["axe", "labs"]) {
    await serving.run(entity, (tx) =>
      defineCollection(tx, "a", "people", {
        fields: { name: { type: "string" }, email: { type: "string", pii: true } },
      }),
    );
    for (const n of [1, 2])
      ids.push(
        (
          await serving.run(entity, (tx, keys) =>
            createRecord(tx, keys, "u", "people", { name: `${entity}${n}`, email: `${entity}${n}@x.io` }),
          )
        ).id,
      );
  }
  return { serving, ids };
}

describe("master key", () => {
  test("keys rotate re-wraps every data key; the serving store and a fresh one still decrypt everything", async () => {
    const { serving, ids } = await seeded();
    const before = readFileSync(fx!.keyPath, "utf8");
    const wrappedBefore = await fx!.db.sql`select wrapped, master_key_id from meta.data_keys order by entity, purpose`;
    const result = await rotateMasterKey(fx!.db.sql, fx!.keyPath);
    expect(result.rewrapped).toBe(4);
    expect(result.to).not.toBe(result.from);
    expect(readFileSync(fx!.keyPath, "utf8")).not.toBe(before);
    expect(existsSync(`${fx!.keyPath}.next`)).toBe(false);
    const wrappedAfter = await fx!.db.sql`select wrapped, master_key_id from meta.data_keys order by entity, purpose`;
    for (const [i, row] of wrappedAfter.entries()) {
      expect(row.master_key_id).toBe(result.to);
      expect(Buffer.compare(row.wrapped, wrappedBefore[i]!.wrapped)).not.toBe(0);
    }
    const fresh = new DataStore(fx!.app, new DataKeyCache(new MasterKeyring(fx!.keyPath)));
    for (const store of [serving, fresh])
      for (const [i, id] of ids.entries()) {
        const entity = i < 2 ? "axe" : "labs";
        const record = await store.run(entity, (tx, keys) => getRecord(tx, keys, id));
        expect(record.values.email).toBe(`${entity}${(i % 2) + 1}@x.io`);
      }
    const found = await fresh.run("labs", (tx, keys) =>
      searchRecords(tx, keys, { collection: "people", filters: { email: "labs2@x.io" } }),
    );
    expect(found.records.map((r) => r.id)).toEqual([ids[3]!]);
    await ensureEntity(fx!.db.sql, { name: "late", customer: "axe" }, new MasterKeyring(fx!.keyPath));
    const [late] = await fx!.db
      .sql`select count(*)::int as n from meta.data_keys where entity = 'late' and master_key_id = ${result.to}`;
    expect(late!.n).toBe(2);
  });

  test("an interrupted rotation (new key written, rows not yet re-wrapped) resumes with the same new key", async () => {
    await seeded();
    const next = newMasterKeyText();
    writeSecretFile(`${fx!.keyPath}.next`, next);
    const result = await rotateMasterKey(fx!.db.sql, fx!.keyPath);
    expect(readFileSync(fx!.keyPath, "utf8")).toBe(next);
    expect(result.rewrapped).toBe(4);
  });

  test("a wrong master key fails loudly, naming the key it expected", async () => {
    const { ids } = await seeded();
    writeSecretFile(fx!.keyPath, newMasterKeyText());
    const store = new DataStore(fx!.app, new DataKeyCache(new MasterKeyring(fx!.keyPath)));
    const attempt = store.run("axe", (tx, keys) => getRecord(tx, keys, ids[0]!));
    await expect(attempt).rejects.toBeInstanceOf(KeyError);
    await expect(attempt).rejects.toThrow(
      /wrapped by master key [0-9a-f]{16}, but .*master\.key holds a different key/,
    );
    writeSecretFile(fx!.keyPath, "not a key\n");
    await expect(new DataKeyCache(new MasterKeyring(fx!.keyPath)).get(fx!.app, "axe")).rejects.toThrow(
      /expected 32 bytes in base64/,
    );
  });
});
