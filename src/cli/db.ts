import { loadConfig } from "../config/load.ts";
import { connect, openDatabase, type Sql } from "../db/connect.ts";
import { migrate, migrationState } from "../db/migrate.ts";
import { CONFIG_OPTION, JSON_OPTION, stringFlag, type Command } from "../lib/cli.ts";

/** Opens the configured database (starting the embedded one if needed) for one piece of work. */
async function withDatabase<T>(configDir: string | undefined, work: (sql: Sql) => Promise<T>): Promise<T> {
  const config = loadConfig({ dir: configDir });
  const db = await openDatabase(config);
  const sql = connect(db.target, { max: 2 });
  try {
    return await work(sql);
  } finally {
    await sql.end({ timeout: 5 });
    await db.embedded?.stop();
  }
}

export const dbCommand: Command = {
  name: "db",
  summary: "the frame database: migrations and their state",
  subcommands: [
    {
      name: "migrate",
      summary: "apply pending migrations (one transaction, advisory lock; safe to run twice)",
      usage: "[--config DIR]",
      options: { config: CONFIG_OPTION },
      run: (inv) =>
        withDatabase(stringFlag(inv, "config"), async (sql) => {
          const applied = await migrate(sql);
          const { current } = await migrationState(sql);
          console.log(applied.length ? `applied migration${applied.length > 1 ? "s" : ""} ${applied.join(", ")}; now at version ${current}` : `up to date at version ${current}`);
        }),
    },
    {
      name: "status",
      summary: "applied and pending migrations",
      usage: "[--json] [--config DIR]",
      options: { json: JSON_OPTION, config: CONFIG_OPTION },
      run: (inv) =>
        withDatabase(stringFlag(inv, "config"), async (sql) => {
          const state = await migrationState(sql);
          if (inv.values.json) {
            console.log(JSON.stringify({ current: state.current, latest: state.latest, pending: state.pending.map((m) => m.version), applied: state.applied }));
            return;
          }
          console.log(`database at version ${state.current}; this release knows up to ${state.latest}`);
          for (const m of state.applied) console.log(`  applied  ${String(m.version).padStart(4)}  ${m.name}  (${m.appliedAt.toISOString()})`);
          for (const m of state.pending) console.log(`  pending  ${String(m.version).padStart(4)}  ${m.name}`);
          if (state.pending.length) console.log("run `axe-appliance db migrate` to apply the pending ones");
        }),
    },
  ],
};
