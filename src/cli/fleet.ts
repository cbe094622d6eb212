import { join } from "node:path";
import { loadFleet } from "../config/customers.ts";
import { resolveConfigDir } from "../config/load.ts";
import { CONFIG_OPTION, type Command, intFlag, JSON_OPTION, stringFlag } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";

export const fleetCommand: Command = {
  name: "fleet",
  summary: "the operator's view of every customer's machine",
  subcommands: [
    {
      name: "status",
      summary: "`status --json` on every machine in customers.yaml over ssh, in parallel, as one table",
      usage:
        "[--json] [--customer NAME]... [--timeout SECONDS] [--ssh-config FILE] [--ssh-option OPT]... [--customers FILE | --config DIR]",
      details: `Runs \`ssh {ssh_user}@{machine} -- axe-appliance status --json\` for every customer at once, each
bounded by --timeout. A machine that is down, refuses ssh, times out or answers without a report
is a row that says UNREACHABLE; the others still report.

Exit codes: 0 all green, 11 some yellow, 12 some red or unreachable.`,
      options: {
        json: JSON_OPTION,
        customer: { type: "string", value: "NAME", multiple: true, description: "only this customer (repeatable)" },
        timeout: { type: "string", value: "SECONDS", description: "per machine (default 20)" },
        "ssh-config": { type: "string", value: "FILE", description: "ssh -F FILE (Tailscale names, keys)" },
        "ssh-option": {
          type: "string",
          value: "OPT",
          multiple: true,
          description: "passed to ssh as -o OPT (repeatable), e.g. ConnectTimeout=5",
        },
        customers: {
          type: "string",
          value: "FILE",
          description: "customers.yaml (default: the one in the config directory)",
        },
        config: CONFIG_OPTION,
      },
      run: async (inv) => {
        const [{ fleetStatus }, { renderFleetTable }, { STATUS_EXIT, worstLevel }] = await Promise.all([
          import("../status/fleet.ts"),
          import("../status/fleet-table.ts"),
          import("../status/report.ts"),
        ]);
        const file =
          stringFlag(inv, "customers") ?? join(resolveConfigDir(stringFlag(inv, "config")), "customers.yaml");
        const fleet = loadFleet(file);
        const only = (inv.values.customer as string[] | undefined) ?? [];
        for (const name of only)
          if (!fleet.customers.some((c) => c.name === name))
            throw new UsageError(
              "BAD_FLAG",
              `${inv.path}: --customer ${name} is not in ${file}`,
              `one of: ${fleet.customers.map((c) => c.name).join(", ")}`,
            );
        const customers = only.length ? fleet.customers.filter((c) => only.includes(c.name)) : fleet.customers;
        const rows = await fleetStatus(customers, {
          sshConfig: stringFlag(inv, "ssh-config"),
          sshOptions: ((inv.values["ssh-option"] as string[] | undefined) ?? []).flatMap((o) => ["-o", o]),
          timeoutMs: (intFlag(inv, "timeout", 1, 3600) ?? 20) * 1000,
        });
        process.stdout.write(inv.values.json ? `${JSON.stringify(rows, null, 2)}\n` : renderFleetTable(rows));
        return STATUS_EXIT[worstLevel(rows.map((r) => (r.state === "unreachable" ? "fail" : r.state)))];
      },
    },
  ],
};
