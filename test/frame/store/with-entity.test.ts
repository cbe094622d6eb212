import { afterEach, describe, expect, test } from "bun:test";
import { statementInEntity, withEntity } from "../../../src/frame/store/with-entity.ts";
import { dataFixture, type DataFixture } from "./fixture.ts";

let fx: DataFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

/** The pool answers as the app role again, and none of its connections is left inside a transaction. */
async function poolIsClean(fixture: DataFixture): Promise<void> {
  const rows = await Promise.all(Array.from({ length: 16 }, () => fixture.app`select current_user as who, current_setting('search_path') as path`));
  for (const [row] of rows) expect(row!.who).toBe(fixture.appRole);
  for (const [row] of rows) expect(row!.path).not.toContain("entity_");
  const [open] = await fixture.db.sql`select count(*)::int as n from pg_stat_activity where usename = ${fixture.appRole} and state like 'idle in transaction%'`;
  expect(open!.n).toBe(0);
}

describe("entity transactions (pipelined begin, switch, work, commit)", () => {
  test("work runs as the entity role in its schema, in one transaction, and the pool comes back clean", async () => {
    fx = await dataFixture();
    const inside = await withEntity(fx.app, "axe", async (tx) => {
      const [a] = await tx`select current_user as who, current_schema() as schema, txid_current() as xid`;
      const [b] = await tx`select txid_current() as xid`;
      return { who: a!.who, schema: a!.schema, sameTransaction: a!.xid === b!.xid };
    });
    expect(inside).toMatchObject({ schema: "entity_axe", sameTransaction: true });
    expect(inside.who).toMatch(/_e_axe$/);
    const [one] = await statementInEntity(fx.app, "labs", (tx) => tx`select current_user as who, current_schema() as schema`);
    expect(one!.schema).toBe("entity_labs");
    expect(one!.who).toMatch(/_e_labs$/);
    await poolIsClean(fx);
  });

  test("another entity's schema is refused by Postgres in both forms", async () => {
    fx = await dataFixture();
    await expect(statementInEntity(fx.app, "axe", (tx) => tx`select count(*) from entity_labs.records`)).rejects.toMatchObject({ code: "42501" });
    await expect(withEntity(fx.app, "axe", (tx) => tx`select count(*) from entity_labs.records`)).rejects.toMatchObject({ code: "42501" });
    await poolIsClean(fx);
  });

  test("a failed statement the work swallowed still fails the call, and nothing it wrote stays", async () => {
    fx = await dataFixture();
    const attempt = withEntity(fx.app, "axe", async (tx) => {
      await tx`insert into collections (name, definition, created_by, updated_by) values ('kept', '{"fields":{}}', 'u', 'u')`;
      await tx`select 1/0`.catch(() => undefined);
      return "looks fine";
    });
    await expect(attempt).rejects.toThrow(/rolled back/);
    const [count] = await fx.db.sql`select count(*)::int as n from entity_axe.collections`;
    expect(count!.n).toBe(0);
    await poolIsClean(fx);
  });

  test("a statement that cannot be built (bad input) ends the begun transaction and frees the connection", async () => {
    fx = await dataFixture();
    for (let i = 0; i < 12; i++) {
      const attempt = statementInEntity(fx.app, "axe", () => {
        throw new Error("bad id");
      });
      await expect(attempt).rejects.toThrow("bad id");
    }
    await poolIsClean(fx);
  });
});
