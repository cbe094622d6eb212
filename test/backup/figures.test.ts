import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { tableFigures } from "../../src/backup/figures.ts";
import { freshDatabase, type TestDatabase, testCluster } from "../helpers/postgres.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

describe("table figures", () => {
  test("a table with a column type that has no extended hash (tsvector, json, point) is hashed by text, with no error in the server log", async () => {
    db = await freshDatabase("fig");
    await db.sql`create domain short_name as varchar(20)`;
    await db.sql`create type mood as enum ('ok', 'sad')`;
    await db.sql`create table plain (id bigint primary key, name short_name, tags text[], at timestamptz, data jsonb, m mood)`;
    await db.sql`create table searchable (id bigint primary key, search tsvector)`;
    await db.sql`create table shaped (id int, doc json, at point, tags varchar[])`;
    await db.sql`insert into plain select i, 'n' || i, array['a', 'b'], now(), '{"a":1}', 'ok' from generate_series(1, 20) i`;
    await db.sql`insert into searchable select i, to_tsvector('simple', 'word ' || i) from generate_series(1, 20) i`;
    await db.sql`insert into shaped select i, '{"a":1}', point(i, i), array['x'] from generate_series(1, 20) i`;
    const log = join((await testCluster()).dir, "postgres.log");
    const before = statSync(log).size;
    const figures = await tableFigures(db.sql);
    expect(figures.map((f) => [f.table, f.rows, f.method])).toEqual([
      ["public.plain", "20", "record"],
      ["public.searchable", "20", "text"],
      ["public.shaped", "20", "text"],
    ]);
    const written = readFileSync(log).subarray(before).toString();
    expect(written).not.toContain("could not identify an extended hash function");
  });

  test("a hash function planted in schema public is never the one the figures use (they run as the owner)", async () => {
    db = await freshDatabase("fig");
    await db.sql`create table shaped (id int, doc json)`;
    await db.sql`create table plain (id bigint primary key, name text)`;
    await db.sql`insert into shaped select i, '{"a":1}' from generate_series(1, 5) i`;
    await db.sql`insert into plain select i, 'n' || i from generate_series(1, 5) i`;
    // More specific than pg_catalog's (text, bigint) and (record, bigint) for a literal 0: chosen if looked up in public.
    await db.sql`create function public.hashtextextended(text, integer) returns bigint language sql as 'select 42::bigint'`;
    await db.sql`create function public.hash_record_extended(public.plain, integer) returns bigint language sql as 'select 42::bigint'`;
    const [truth] = await db.sql`
      select (select sum(pg_catalog.hashtextextended(t::text, 0))::text from public.shaped t) as shaped,
             (select sum(pg_catalog.hash_record_extended(t, 0))::text from public.plain t) as plain`;
    const figures = await tableFigures(db.sql);
    expect(Object.fromEntries(figures.map((f) => [f.table, f.checksum]))).toEqual({
      "public.plain": truth!.plain,
      "public.shaped": truth!.shaped,
    });
  });
});
