import { ROLES, type Role } from "../config/customers.ts";
import { CONFIG_OPTION, type Command, choiceFlag, JSON_OPTION, positional, stringFlag } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { operatorName } from "./audit.ts";
import { withOwnerDatabase } from "./frame-db.ts";

export const tokenCommand: Command = {
  name: "token",
  summary: "service tokens for automation and the operator",
  subcommands: [
    {
      name: "issue",
      summary: "issue a token (printed once; only its keyed hash is stored)",
      usage: "--entity E --role reader|writer|admin --name N [--expires 90d] [--config DIR]",
      details:
        "Prints the token on stdout, once. Send it as 'Authorization: Bearer <token>' to /frame/mcp.\nThe entity must be one of this machine's customer's entities in customers.yaml.",
      options: {
        entity: { type: "string", value: "E", description: "the entity the token acts in" },
        role: { type: "string", value: "ROLE", description: `one of ${ROLES.join(", ")}` },
        name: { type: "string", value: "N", description: "what uses the token, for people reading 'token list'" },
        expires: {
          type: "string",
          value: "DURATION",
          description: "lifetime such as 90d, 12h, 30m or 2w (default 90d)",
        },
        config: CONFIG_OPTION,
      },
      run: async (inv) => {
        const { issueServiceToken, parseDuration } = await import("../frame/auth/service-tokens.ts");
        // Flags are checked before the database is opened (which may start the embedded cluster).
        const entity = stringFlag(inv, "entity", true);
        const role = choiceFlag(inv, "role", ROLES, true) as Role;
        const name = stringFlag(inv, "name", true);
        const expiresInMs = parseDuration(stringFlag(inv, "expires") ?? "90d");
        return withOwnerDatabase(stringFlag(inv, "config"), async (sql, config) => {
          const entities = config.customer.entities.map((e) => e.name);
          if (!entities.includes(entity))
            throw new UsageError(
              "UNKNOWN_ENTITY",
              `entity '${entity}' is not an entity of customer ${config.customer.name}; expected one of ${entities.join(", ")}`,
              "see customers.yaml",
            );
          const { token, record } = await issueServiceToken(sql, config.paths.secrets, {
            customer: config.customer.name,
            entity,
            role,
            name,
            expiresInMs,
            who: operatorName(),
          });
          process.stderr.write(
            `issued ${record.id} (${record.name}): ${record.role} of ${record.entity}, expires ${record.expiresAt.toISOString()}. It is shown once:\n`,
          );
          process.stdout.write(`${token}\n`);
        });
      },
    },
    {
      name: "list",
      summary: "list tokens (never their secrets)",
      usage: "[--json] [--config DIR]",
      options: { json: JSON_OPTION, config: CONFIG_OPTION },
      run: (inv) =>
        withOwnerDatabase(stringFlag(inv, "config"), async (sql, config) => {
          const { listServiceTokens } = await import("../frame/auth/service-tokens.ts");
          const tokens = await listServiceTokens(sql, config.customer.name);
          if (inv.values.json) return void process.stdout.write(`${JSON.stringify(tokens)}\n`);
          if (!tokens.length)
            return void process.stdout.write("no service tokens; issue one with 'axe-appliance token issue'\n");
          const now = Date.now();
          const state = (t: (typeof tokens)[number]) =>
            t.revokedAt ? "revoked" : t.expiresAt.getTime() <= now ? "expired" : "active";
          const rows = [
            ["ID", "NAME", "ENTITY", "ROLE", "STATE", "EXPIRES", "LAST USED"],
            ...tokens.map((t) => [
              t.id,
              t.name,
              t.entity,
              t.role,
              state(t),
              t.expiresAt.toISOString(),
              t.lastUsedAt?.toISOString() ?? "never",
            ]),
          ];
          const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
          for (const row of rows)
            process.stdout.write(
              `${row
                .map((cell, i) => cell.padEnd(widths[i]!))
                .join("  ")
                .trimEnd()}\n`,
            );
        }),
    },
    {
      name: "revoke",
      summary: "revoke a token by id (takes effect on the next request)",
      usage: "ID [--config DIR]",
      options: { config: CONFIG_OPTION },
      positionals: 1,
      run: (inv) => {
        const id = positional(inv, 0, "ID", "give the token's ID (see 'axe-appliance token list')");
        return withOwnerDatabase(stringFlag(inv, "config"), async (sql, config) => {
          const { revokeServiceToken } = await import("../frame/auth/service-tokens.ts");
          if (!(await revokeServiceToken(sql, config.customer.name, id, operatorName())))
            throw new UsageError("UNKNOWN_TOKEN", `no active token with id '${id}'`, "see 'axe-appliance token list'");
          process.stdout.write(`revoked ${id}\n`);
        });
      },
    },
  ],
};
