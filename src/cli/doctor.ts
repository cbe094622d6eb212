import type { CheckResult } from "../doctor/checks.ts";
import { CONFIG_OPTION, type Command, JSON_OPTION, stringFlag } from "../lib/cli.ts";
import { EXIT } from "../lib/errors.ts";
import { withOwnerDatabase } from "./frame-db.ts";

/** The per-entity record checks, or one FAIL saying why the database could not be read. */
async function recordResults(configDir: string | undefined): Promise<CheckResult[]> {
  const { recordChecks } = await import("../doctor/records.ts");
  try {
    return await withOwnerDatabase(configDir, recordChecks, { migrate: false });
  } catch (error) {
    const hint = (error as { hint?: string }).hint;
    return [
      {
        name: "records",
        ok: false,
        detail: error instanceof Error ? error.message : String(error),
        fix: hint ?? "check database.url and that the database is up",
      },
    ];
  }
}

export const doctorCommand: Command = {
  name: "doctor",
  summary: "check config, required programs, ports and secret file modes; print OK/FAIL with fixes",
  usage: "[--records] [--json] [--config DIR]",
  details: `Exit code 0 when every check is OK, 10 when any check fails.
--records also opens the database (starting the embedded cluster if needed) and reads every record
of every entity as frame would: rows that do not decode (changed outside frame) are listed by id.`,
  options: {
    records: { type: "boolean", description: "also read every record and list those that do not decode" },
    json: JSON_OPTION,
    config: CONFIG_OPTION,
  },
  run: async (inv) => {
    const { runChecks } = await import("../doctor/checks.ts");
    const configDir = stringFlag(inv, "config");
    const results = await runChecks(configDir);
    if (inv.values.records) results.push(...(await recordResults(configDir)));
    if (inv.values.json) console.log(JSON.stringify(results));
    else {
      const width = Math.max(...results.map((r) => r.name.length));
      for (const r of results) {
        console.log(
          `${r.ok ? "OK  " : "FAIL"}  ${r.name.padEnd(width)}  ${r.detail.replaceAll("\n", `\n${" ".repeat(width + 8)}`)}`,
        );
        if (!r.ok && r.fix) console.log(`${" ".repeat(width + 8)}fix: ${r.fix}`);
      }
    }
    return results.every((r) => r.ok) ? EXIT.ok : EXIT.doctor;
  },
};
