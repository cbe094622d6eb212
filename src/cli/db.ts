import { CONFIG_OPTION, type Command, JSON_OPTION, stringFlag } from "../lib/cli.ts";
import { withOwnerDatabase } from "./frame-db.ts";

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
        withOwnerDatabase(
          stringFlag(inv, "config"),
          async (sql) => {
            const { migrate, migrationState } = await import("../db/migrate.ts");
            const applied = await migrate(sql);
            const { current } = await migrationState(sql);
            console.log(
              applied.length
                ? `applied migration${applied.length > 1 ? "s" : ""} ${applied.join(", ")}; now at version ${current}`
                : `up to date at version ${current}`,
            );
          },
          { migrate: false },
        ),
    },
    {
      name: "status",
      summary: "applied and pending migrations",
      usage: "[--json] [--config DIR]",
      options: { json: JSON_OPTION, config: CONFIG_OPTION },
      run: (inv) =>
        withOwnerDatabase(
          stringFlag(inv, "config"),
          async (sql) => {
            const { migrationState } = await import("../db/migrate.ts");
            const state = await migrationState(sql);
            if (inv.values.json) {
              console.log(
                JSON.stringify({
                  current: state.current,
                  latest: state.latest,
                  pending: state.pending.map((m) => m.version),
                  applied: state.applied,
                }),
              );
              return;
            }
            console.log(`database at version ${state.current}; this release knows up to ${state.latest}`);
            for (const m of state.applied)
              console.log(`  applied  ${String(m.version).padStart(4)}  ${m.name}  (${m.appliedAt.toISOString()})`);
            for (const m of state.pending) console.log(`  pending  ${String(m.version).padStart(4)}  ${m.name}`);
            if (state.pending.length) console.log("run `axe-appliance db migrate` to apply the pending ones");
          },
          { migrate: false },
        ),
    },
  ],
};
