import { afterEach, describe, expect, test } from "bun:test";
import { connect, type Sql } from "../../../src/db/connect.ts";
import { statementInEntity, withEntity } from "../../../src/frame/store/with-entity.ts";
import { type DataFixture, dataFixture } from "./fixture.ts";

let fx: DataFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

/** The pool answers as the app role again, and none of its connections is left inside a transaction. */
async function poolIsClean(fixture: DataFixture): Promise<void> {
  const rows = await Promise.all(
    Array.from({ length: 16 }, () => fixture.app`select current_user as who, current_setting('search_path') as path`),
  );
  for (const [row] of rows) expect(row!.who).toBe(fixture.appRole);
  for (const [row] of rows) expect(row!.path).not.toContain("entity_");
  const [open] = await fixture.db
    .sql`select count(*)::int as n from pg_stat_activity where usename = ${fixture.appRole} and state like 'idle in transaction%'`;
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
    const [one] = await statementInEntity(
      fx.app,
      "labs",
      (tx) => tx`select current_user as who, current_schema() as schema`,
    );
    expect(one!.schema).toBe("entity_labs");
    expect(one!.who).toMatch(/_e_labs$/);
    await poolIsClean(fx);
  });

  test("another entity's schema is refused by Postgres in both forms", async () => {
    fx = await dataFixture();
    await expect(
      statementInEntity(fx.app, "axe", (tx) => tx`select count(*) from entity_labs.records`),
    ).rejects.toMatchObject({ code: "42501" });
    await expect(withEntity(fx.app, "axe", (tx) => tx`select count(*) from entity_labs.records`)).rejects.toMatchObject(
      { code: "42501" },
    );
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

describe("single statements on a pipe (one shared connection, never reserved)", () => {
  let pipe: Sql | undefined;
  afterEach(async () => {
    await pipe?.end({ timeout: 1 });
    pipe = undefined;
  });
  const openPipe = (fixture: DataFixture) =>
    (pipe = connect({ ...fixture.db.target, user: fixture.appRole, password: fixture.appPassword }, { max: 1 }));

  test("interleaved calls of two entities, some failing, each get their own answer and the pipe stays clean", async () => {
    fx = await dataFixture();
    const p = openPipe(fx);
    const calls = Array.from({ length: 120 }, (_, i) => {
      const entity = i % 2 ? "axe" : "labs";
      const other = i % 2 ? "labs" : "axe";
      if (i % 7 === 3)
        return statementInEntity(fx!.app, entity, (tx) => tx`select 1/0 as x`, p).then(
          () => "no error",
          (e: { code?: string }) => `refused ${e.code}`,
        );
      if (i % 7 === 5)
        return statementInEntity(
          fx!.app,
          entity,
          (tx) => tx`select count(*) from ${tx(`entity_${other}`)}.records`,
          p,
        ).then(
          () => "no error",
          (e: { code?: string }) => `refused ${e.code}`,
        );
      return statementInEntity(
        fx!.app,
        entity,
        (tx) => tx`select current_user as who, current_schema() as schema, ${i}::int as i`,
        p,
      ).then(([row]) => `${row!.schema} ${String(row!.who).endsWith(`_e_${entity}`)} ${row!.i}`);
    });
    const answers = await Promise.all(calls);
    answers.forEach((answer, i) => {
      const entity = i % 2 ? "axe" : "labs";
      if (i % 7 === 3) expect(answer).toBe("refused 22012");
      else if (i % 7 === 5) expect(answer).toBe("refused 42501");
      else expect(answer).toBe(`entity_${entity} true ${i}`);
    });
    const [after] = await p`select current_user as who, current_setting('search_path') as path`;
    expect(after!.who).toBe(fx.appRole);
    expect(after!.path).not.toContain("entity_");
    await poolIsClean(fx); // counts the pipe's backend too: none is left idle in a transaction
  });

  test("a statement whose building fails retires the pipe; later calls take reserved connections and stay correct", async () => {
    fx = await dataFixture();
    const p = openPipe(fx);
    const ok = await statementInEntity(fx.app, "axe", (tx) => tx`select current_schema() as schema`, p);
    expect(ok[0]!.schema).toBe("entity_axe");
    const broken = statementInEntity(fx.app, "axe", (tx) => tx`select ${undefined as unknown as string} as x`, p);
    await expect(broken).rejects.toMatchObject({ code: "UNDEFINED_VALUE" });
    // Retired: ended by us, so the pipe itself refuses work now...
    await expect(p`select 1`).rejects.toMatchObject({ code: "CONNECTION_ENDED" });
    // ...and statementInEntity goes around it.
    const [row] = await statementInEntity(
      fx.app,
      "labs",
      (tx) => tx`select current_schema() as schema, current_user as who`,
      p,
    );
    expect(row!.schema).toBe("entity_labs");
    expect(String(row!.who)).toMatch(/_e_labs$/);
    await poolIsClean(fx);
  });

  test("a pool of more than one connection is not a pipe", async () => {
    fx = await dataFixture();
    await expect(statementInEntity(fx.app, "axe", (tx) => tx`select 1`, fx.app)).rejects.toThrow(
      /exactly one connection/,
    );
  });
});

describe("statements prepared on one connection under one entity, run under another (review 4)", () => {
  test("the same text on the pipe and a one-connection pool reads each entity's own table, past the generic plan", async () => {
    fx = await dataFixture();
    const seed = async (schema: string, rows: number) => {
      await fx!.db.sql`insert into ${fx!.db.sql(`${schema}.collections`)} (name, definition, created_by, updated_by)
                       values ('people', '{"fields":{}}', 'seed', 'seed')`;
      for (let i = 0; i < rows; i++)
        await fx!.db
          .sql`insert into ${fx!.db.sql(`${schema}.records`)} (id, collection, version, data, created_by, updated_by)
                         values (gen_random_uuid(), 'people', 1, ${fx!.db.sql.json({ i })}, 'seed', 'seed')`;
    };
    await seed("entity_labs", 3);
    await seed("entity_axe", 1);
    const pipe = connect({ ...fx.db.target, user: fx.appRole, password: fx.appPassword }, { max: 1 });
    const one = connect({ ...fx.db.target, user: fx.appRole, password: fx.appPassword }, { max: 1 });
    try {
      // One text, prepared once per connection (postgres.js names its statements), run 12 times per
      // entity so Postgres switches to a generic plan: every run must resolve `records` anew.
      const count = (entity: string, p: Sql | undefined) =>
        statementInEntity(
          fx!.app,
          entity,
          (tx) => tx<{ n: number }[]>`select count(*)::int as n from records where collection = ${"people"}`,
          p,
        ).then(([row]) => `${entity}:${row!.n}`);
      for (const p of [pipe, undefined]) {
        const answers = await Promise.all(Array.from({ length: 24 }, (_, i) => count(i % 2 ? "axe" : "labs", p)));
        expect(answers).toEqual(answers.map((_, i) => (i % 2 ? "axe:1" : "labs:3")));
      }
      // A one-connection pool that is not a pipe: withEntity reserves the same backend every time.
      for (let i = 0; i < 24; i++) {
        const entity = i % 2 ? "axe" : "labs";
        const n = await withEntity(one, entity, async (tx) => {
          const [row] = await tx<
            { n: number }[]
          >`select count(*)::int as n from records where collection = ${"people"}`;
          return row!.n;
        });
        expect(`${entity}:${n}`).toBe(i % 2 ? "axe:1" : "labs:3");
      }
      const [plans] = await pipe<{ n: number }[]>`select count(*)::int as n from pg_prepared_statements`;
      expect(plans!.n).toBeGreaterThan(0); // the statements really were prepared and reused on the pipe
    } finally {
      await pipe.end({ timeout: 1 });
      await one.end({ timeout: 1 });
    }
  });
});
