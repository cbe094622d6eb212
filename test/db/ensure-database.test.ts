import { expect, test } from "bun:test";
import { connect, ensureDatabase } from "../../src/db/connect.ts";
import { testCluster } from "../helpers/postgres.ts";

test("blue and green creating the same database at once both succeed, and it exists once", async () => {
  const admin = (await testCluster()).target("postgres");
  const name = `race_${Date.now().toString(36)}`;
  await Promise.all(Array.from({ length: 6 }, () => ensureDatabase(admin, name)));
  const sql = connect(admin, { max: 1 });
  try {
    const rows = await sql`select count(*)::int as n from pg_database where datname = ${name}`;
    expect(rows[0]!.n).toBe(1);
    await sql`drop database ${sql(name)}`;
  } finally {
    await sql.end();
  }
});
