import { type Config, loadConfig } from "../config/load.ts";
import type { Sql } from "../db/connect.ts";

/**
 * Opens the configured database as its owner (starting the embedded cluster if needed, and
 * stopping it after if this process started it), migrated unless told not to, for one piece of
 * operator work.
 */
export async function withOwnerDatabase<T>(
  configDir: string | undefined,
  work: (sql: Sql, config: Config) => Promise<T>,
  options: { migrate?: boolean } = {},
): Promise<T> {
  const config = loadConfig({ dir: configDir });
  // imported here, as every command implementation is: the proxy process must not carry postgres.js
  const [{ connect, openDatabase }, { migrate }] = await Promise.all([
    import("../db/connect.ts"),
    import("../db/migrate.ts"),
  ]);
  const db = await openDatabase(config);
  const sql = connect(db.target, { max: 2, catalogOnly: true });
  try {
    if (options.migrate ?? true) await migrate(sql);
    return await work(sql, config);
  } finally {
    await sql.end({ timeout: 5 });
    await db.embedded?.stop();
  }
}
