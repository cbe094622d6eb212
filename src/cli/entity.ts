import { ENTITY_NAME } from "../config/customers.ts";
import { CONFIG_OPTION, type Command, JSON_OPTION, positional, stringFlag } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { LABEL_PREFIX } from "../lib/version.ts";
import { withOwnerDatabase } from "./frame-db.ts";

export const entityCommand: Command = {
  name: "entity",
  summary: "entities: one schema, one database role and one pair of data keys each",
  subcommands: [
    {
      name: "create",
      summary: "create an entity of this machine's customer (safe to run twice)",
      usage: "NAME [--config DIR]",
      details:
        "NAME: lower case letters, digits and _, starting with a letter, at most 31 characters.\nEntities listed in customers.yaml are also created when serve starts, and when a running serve gets SIGHUP.\nA running serve accepts tokens for an entity once customers.yaml lists it and serve has read it again (SIGHUP).",
      options: { config: CONFIG_OPTION },
      positionals: 1,
      run: (inv) => {
        // Arguments are checked before the database is opened (which may start the embedded cluster).
        const name = positional(inv, 0, "NAME");
        if (!ENTITY_NAME.test(name))
          throw new UsageError(
            "BAD_ARGUMENT",
            `${inv.path}: '${name}' is not an entity name (lower case letters, digits and _, starting with a letter, at most 31)`,
          );
        return withOwnerDatabase(stringFlag(inv, "config"), async (sql, config) => {
          const [{ ensureEntity }, { DataError }, { ensureMasterKey, masterKeyPath }, { operatorName }] =
            await Promise.all([
              import("../frame/store/entities.ts"),
              import("../frame/store/errors.ts"),
              import("../frame/store/open-data.ts"),
              import("./audit.ts"),
            ]);
          const ring = await ensureMasterKey(sql, masterKeyPath(config));
          const entity = { name, customer: config.customer.name };
          const created = await ensureEntity(sql, entity, ring, operatorName()).catch((error) => {
            if (error instanceof DataError)
              throw new UsageError("BAD_ARGUMENT", `${inv.path}: ${error.message}`, error.hint);
            throw error;
          });
          console.log(
            `${created ? "created" : "already present:"} entity ${name} (schema entity_${name}) for customer ${config.customer.name}`,
          );
          if (!config.customer.entities.some((e) => e.name === name))
            console.log(
              `next: add { name: ${name} } to customer ${config.customer.name}'s entities in customers.yaml; frame accepts its tokens only then`,
            );
          console.log(
            "then tell the running colors to read customers.yaml again (no restart): " +
              (process.platform === "darwin"
                ? `sudo launchctl kill HUP system/${LABEL_PREFIX}.blue; sudo launchctl kill HUP system/${LABEL_PREFIX}.green`
                : `sudo systemctl kill -s HUP ${LABEL_PREFIX}.blue ${LABEL_PREFIX}.green`) +
              " (under `up`: kill -HUP the serve processes)",
          );
        });
      },
    },
    {
      name: "list",
      summary: "list the entities in the database",
      usage: "[--json] [--config DIR]",
      options: { json: JSON_OPTION, config: CONFIG_OPTION },
      run: (inv) =>
        withOwnerDatabase(stringFlag(inv, "config"), async (sql) => {
          const { listEntities } = await import("../frame/store/entities.ts");
          const entities = await listEntities(sql);
          if (inv.values.json) return void console.log(JSON.stringify(entities));
          for (const e of entities)
            console.log(
              `${e.name.padEnd(32)}  customer ${e.customer}  role ${e.role}  since ${e.createdAt.toISOString()}`,
            );
          if (!entities.length) console.log("no entities yet; `axe-appliance entity create NAME` or start serve");
        }),
    },
  ],
};
