import { CONFIG_OPTION, type Command, JSON_OPTION, stringFlag } from "../lib/cli.ts";

export const doctorCommand: Command = {
  name: "doctor",
  summary: "check config, required programs, ports and secret file modes; print OK/FAIL with fixes",
  usage: "[--json] [--config DIR]",
  details: "Exit code 0 when every check is OK, 10 when any check fails.",
  options: { json: JSON_OPTION, config: CONFIG_OPTION },
  run: async (inv) => {
    const { runChecks } = await import("../doctor/checks.ts");
    const results = await runChecks(stringFlag(inv, "config"));
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
    return results.every((r) => r.ok) ? 0 : 10;
  },
};
