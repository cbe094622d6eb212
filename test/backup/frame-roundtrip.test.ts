/**
 * The round trip on the real frame data layer (src/frame/store): entities with encrypted PII,
 * record history and hash-chained audit logs; the whole database dropped and re-created empty;
 * `backup restore`; every row back, records decrypt, and `audit verify` passes.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { connect, type Sql } from "../../src/db/connect.ts";
import { appendAudit } from "../../src/frame/store/audit.ts";
import { defineCollection } from "../../src/frame/store/collections.ts";
import { DataStore } from "../../src/frame/store/data-store.ts";
import { createRecord, getRecord, updateRecord } from "../../src/frame/store/records.ts";
import { type DataFixture, dataFixture } from "../frame/store/fixture.ts";
import { runCli } from "../helpers/cli.ts";
import { backupFixture, listLatest } from "../helpers/restic.ts";
import { databaseUrl } from "./fixtures.ts";

let fx: DataFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

/** Every row of every table in the frame schemas, as sorted JSON text per table. */
async function everyRow(sql: Sql): Promise<Record<string, string[]>> {
  const tables = await sql<{ schema: string; name: string }[]>`
    select table_schema as schema, table_name as name from information_schema.tables
    where table_type = 'BASE TABLE' and (table_schema = 'meta' or table_schema like 'entity\\_%') order by 1, 2`;
  const out: Record<string, string[]> = {};
  for (const { schema, name } of tables) {
    const rows = await sql<
      { row: string }[]
    >`select to_jsonb(t)::text as row from ${sql(schema)}.${sql(name)} t order by 1`;
    out[`${schema}.${name}`] = rows.map((r) => r.row);
  }
  return out;
}

describe("backup round trip on the frame store", () => {
  test("records, history, PII and audit chains come back; audit verify passes", async () => {
    fx = await dataFixture(["axe", "labs"]);
    const store = new DataStore(fx.app, fx.keys);
    const people = {
      fields: {
        name: { type: "string", required: true, searchable: true },
        email: { type: "string", pii: true },
        age: { type: "integer" },
      },
    };
    const ids: Record<string, string[]> = { axe: [], labs: [] };
    for (const entity of ["axe", "labs"]) {
      await store.run(entity, (tx) => defineCollection(tx, "admin", "people", people));
      for (let i = 0; i < 60; i++) {
        const r = await store.run(entity, (tx, keys) =>
          createRecord(tx, keys, "u1", "people", {
            name: `Zoë ${entity} ${i}`,
            email: `p${i}@${entity}.example`,
            age: i,
          }),
        );
        ids[entity]!.push(r.id);
        if (i % 3 === 0) await store.run(entity, (tx, keys) => updateRecord(tx, keys, "u2", r.id, 1, { age: i + 100 }));
      }
      await appendAudit(
        fx.db.sql,
        ...Array.from({ length: 80 }, (_, i) => ({
          at: new Date(),
          who: `u${i % 5}`,
          entity,
          tool: "record_create",
          outcome: "ok" as const,
          durationMs: i,
        })),
      );
    }
    const before = await everyRow(fx.db.sql);
    expect(before["entity_axe.audit_log"]!.length).toBe(80);
    expect(Object.keys(before).length).toBeGreaterThanOrEqual(6);

    const bx = backupFixture({ database: fx.db.target });
    expect((await runCli(["backup", "init", "--config", bx.configDir])).code).toBe(0);
    const run = await runCli(["backup", "run", "--tier", "local", "--config", bx.configDir]);
    expect(run.stderr).not.toContain("error:");
    expect(run.code).toBe(0);
    // The run signed the audit chains' heads before its dump, and the state snapshot carries the anchor.
    const files = listLatest(bx.localRepo, bx.passwordFile("local"), "files");
    expect(files.some((f) => f.endsWith("/state/audit-anchors.jsonl"))).toBe(true);

    // Wipe: the whole database dropped and created again, empty.
    const name = fx.db.target.database;
    const admin = connect(fx.db.admin, { max: 1 });
    await admin`drop database ${admin(name)} with (force)`;
    await admin`create database ${admin(name)}`;
    await admin.end({ timeout: 5 });
    expect(await everyRow(fx.db.sql)).toEqual({});

    const restore = await runCli([
      "backup",
      "restore",
      "--snapshot",
      "latest",
      "--to-database",
      databaseUrl(fx.db.target),
      "--config",
      bx.configDir,
    ]);
    expect(restore.stderr).toBe("");
    expect(restore.code).toBe(0);
    expect(await everyRow(fx.db.sql)).toEqual(before);

    const audit = await runCli(["audit", "verify", "--config", bx.configDir]);
    expect(audit.stderr).toBe("");
    expect(audit.code).toBe(0);
    expect(audit.stdout).toMatch(/ok\s+entity_axe\.audit_log\s+80 rows verified; anchored through row 80 /);
    expect(audit.stdout).toMatch(/ok\s+entity_labs\.audit_log\s+80 rows verified/);

    // The app role and the wrapped data keys still work: PII decrypts through the store.
    const back = await store.run("labs", (tx, keys) => getRecord(tx, keys, ids.labs![3]!));
    expect(back.values).toEqual({ name: "Zoë labs 3", email: "p3@labs.example", age: 103 });
  }, 180_000);
});
