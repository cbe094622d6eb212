import { afterEach, describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect.ts";
import { migrate, migrationState } from "../../src/db/migrate.ts";
import { MIGRATIONS, type Migration } from "../../src/db/migrations/index.ts";
import { DatabaseError } from "../../src/lib/errors.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

describe("migrations", () => {
  test("apply once, then report up to date", async () => {
    db = await freshDatabase("mig");
    expect((await migrationState(db.sql)).current).toBe(0);
    const first = await migrate(db.sql);
    expect(first).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await migrate(db.sql)).toEqual([]);
    const state = await migrationState(db.sql);
    expect(state.current).toBe(state.latest);
    expect(state.pending).toEqual([]);
    const [entities] = await db.sql`select to_regclass('meta.entities') is not null as present`;
    expect(entities!.present).toBe(true);
  });

  test("two colors migrating at once: the advisory lock lets exactly one apply", async () => {
    db = await freshDatabase("mig");
    const slow: Migration[] = [
      ...MIGRATIONS,
      { version: 9001, name: "slow", sql: "select pg_sleep(0.3); create table meta.once (x int);" },
    ];
    const blue = connect(db.target, { max: 1 });
    const green = connect(db.target, { max: 1 });
    try {
      const [a, b] = await Promise.all([migrate(blue, slow), migrate(green, slow)]);
      expect([...a, ...b].filter((v) => v === 9001)).toEqual([9001]);
      const rows = await db.sql`select count(*)::int as n from meta.schema_migrations where version = 9001`;
      expect(rows[0]!.n).toBe(1);
    } finally {
      await blue.end();
      await green.end();
    }
  });

  test("a failing migration rolls back all of its work", async () => {
    db = await freshDatabase("mig");
    const broken: Migration[] = [
      ...MIGRATIONS,
      { version: 9002, name: "broken", sql: "create table meta.half (x int); select * from nowhere;" },
    ];
    await expect(migrate(db.sql, broken)).rejects.toBeInstanceOf(DatabaseError);
    const [half] = await db.sql`select to_regclass('meta.half') is not null as present`;
    expect(half!.present).toBe(false);
    expect((await migrationState(db.sql)).current).toBe(0);
  });

  test("an edited shipped migration is refused", async () => {
    db = await freshDatabase("mig");
    await migrate(db.sql);
    const edited = MIGRATIONS.map((m, i) => (i === 0 ? { ...m, sql: `${m.sql}\n-- edited` } : m));
    await expect(migrationState(db.sql, edited)).rejects.toThrow(/differs from this release's copy/);
  });
});
