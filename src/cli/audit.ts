import { CONFIG_OPTION, type Command, JSON_OPTION, stringFlag } from "../lib/cli.ts";
import { DatabaseError, UsageError } from "../lib/errors.ts";
import { withOwnerDatabase } from "./frame-db.ts";

export const auditCommand: Command = {
  name: "audit",
  summary: "the hash-chained audit log",
  subcommands: [
    {
      name: "verify",
      summary: "walk the chain and name the first broken row",
      usage: "[--entity E] [--json] [--config DIR]",
      details: `
Checks meta.audit_log (refused requests) and every entity's audit_log, or one entity's with --entity:
seq has no gaps, each prev_hash is the previous row's hash, each hash matches its row.
Exit 0 when every chain holds, 4 when one is broken (the message names the log and the row).`,
      options: {
        entity: { type: "string", value: "E", description: "verify this entity's log only" },
        json: JSON_OPTION,
        config: CONFIG_OPTION,
      },
      run: (inv) =>
        withOwnerDatabase(stringFlag(inv, "config"), async (sql) => {
          const [{ verifyAudit }, { ENTITY_NAME }] = await Promise.all([
            import("../frame/store/audit-verify.ts"),
            import("../frame/store/names.ts"),
          ]);
          const entity = stringFlag(inv, "entity");
          if (entity !== undefined) {
            const [known] = ENTITY_NAME.test(entity)
              ? await sql`select 1 from meta.entities where name = ${entity}`
              : [];
            if (!known)
              throw new UsageError(
                "UNKNOWN_ENTITY",
                `${inv.path}: no entity '${entity}'`,
                "see `axe-appliance entity list`",
              );
          }
          const reports = await verifyAudit(sql, entity ? { entity } : {});
          if (inv.values.json) console.log(JSON.stringify(reports));
          else
            for (const r of reports)
              console.log(
                `${r.broken ? "BROKEN" : "ok    "}  ${r.table}  ${r.rows} rows verified${r.broken ? `; row ${r.broken.seq}: ${r.broken.reason}` : ""}`,
              );
          const broken = reports.find((r) => r.broken);
          if (broken)
            throw new DatabaseError(
              "AUDIT_CHAIN_BROKEN",
              `audit chain ${broken.table} is broken at row ${broken.broken!.seq}: ${broken.broken!.reason}`,
              "compare that row with the last backup to see what was changed",
            );
        }),
    },
  ],
};
