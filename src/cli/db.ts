import { loadConfig } from "../config/load.ts";
import { CONFIG_OPTION, type Command, JSON_OPTION, stringFlag } from "../lib/cli.ts";
import { ConfigError } from "../lib/errors.ts";
import { withOwnerDatabase } from "./frame-db.ts";

export const dbCommand: Command = {
  name: "db",
  summary: "the frame database: migrations and their state; restarting or stopping the embedded cluster",
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
    {
      name: "restart",
      summary: "restart the embedded Postgres (start it if it is down) so settings read only at start apply",
      usage: "[--config DIR]",
      details: `
The embedded cluster is shared by blue, green, backups and these commands, and stays up while any
of them uses it, so restarting a color does not restart it. Run this after changing what Postgres
reads only at start (backup.wal.enabled: archive_mode). Fast shutdown: open sessions end and the
colors connect again; a request that was in a query at that moment fails. Refused with
database.url, a server this appliance does not run.`,
      options: { config: CONFIG_OPTION },
      run: async (inv) => {
        const cluster = await embeddedCluster(stringFlag(inv, "config"), true); // appliance.yaml's settings written first
        if (cluster.startedHere) {
          console.log(`started the embedded Postgres (pid ${cluster.serverPid()}); it was not running`);
          return;
        }
        const before = cluster.serverPid();
        const after = await cluster.restart();
        console.log(`restarted the embedded Postgres (pid ${before} -> ${after}); sessions connect again`);
      },
    },
    {
      name: "stop",
      summary: "stop the embedded Postgres, whoever started it (stop the services first)",
      usage: "[--config DIR]",
      details: `
For work on the cluster's files (putting a restored cluster in its place): stop blue, green and
the backup jobs first, since the cluster stays up while any of them uses it. Fast shutdown: a
session still open ends. The next process that needs the database starts it again. Refused with
database.url.`,
      options: { config: CONFIG_OPTION },
      run: async (inv) => {
        const cluster = await embeddedCluster(stringFlag(inv, "config"), false);
        const pid = cluster.serverPid();
        const outcome = await cluster.stop({ force: true });
        console.log(
          outcome === "stopped" ? `stopped the embedded Postgres (pid ${pid})` : "the embedded Postgres is not running",
        );
      },
    },
  ],
};

/** The embedded cluster of the config in `dir`; refused when database.url names another server. */
async function embeddedCluster(dir: string | undefined, start: boolean) {
  const config = loadConfig({ dir });
  if (config.appliance.database.url)
    throw new ConfigError(
      "DB_NOT_EMBEDDED",
      "database.url is set: that server is not this appliance's to restart or stop",
      "do it where it runs (brew services, systemctl, Docker), or omit database.url to use the embedded cluster",
    );
  const { openEmbedded } = await import("../db/connect.ts");
  return openEmbedded(config, { start });
}
