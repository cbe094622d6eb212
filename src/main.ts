#!/usr/bin/env bun
import { auditCommand } from "./cli/audit.ts";
import { backupCommand } from "./cli/backup.ts";
import { dbCommand } from "./cli/db.ts";
import { deployCommand } from "./cli/deploy.ts";
import { doctorCommand } from "./cli/doctor.ts";
import { entityCommand } from "./cli/entity.ts";
import { fleetCommand } from "./cli/fleet.ts";
import { keysCommand } from "./cli/keys.ts";
import { proxyCommand } from "./cli/proxy.ts";
import { serveCommand } from "./cli/serve.ts";
import { servicesCommand } from "./cli/services.ts";
import { statusCommand } from "./cli/status.ts";
import { tokenCommand } from "./cli/token.ts";
import { upCommand } from "./cli/up.ts";
/**
 * axe-appliance: one program per customer Mac mini. Each mode is a subcommand; this file only
 * assembles the command tree and turns errors into one-line messages and exit codes.
 */
import { type Command, dispatch } from "./lib/cli.ts";
import { AppError, describeError, EXIT, EXIT_CODES } from "./lib/errors.ts";
import { buildInfo, versionJson } from "./lib/version.ts";

export const root: Command = {
  name: "axe-appliance",
  summary: "frame (MCP server), its blue/green proxy, deploys and backups for one customer's Mac mini",
  details: `
Modes:    serve (frame on :3710 blue / :3711 green), proxy (:3712), deploy, backup, up (all in one terminal)
Around:   token, keys, entity, db, audit, status, fleet status (every machine over ssh), services, doctor

Global:   --version prints version, git commit and build target (--version --json: as JSON, with what
          this build supports); --help works on every level.
Config:   appliance.yaml + customers.yaml in --config DIR, $AXE_CONFIG_DIR, /opt/axe/config or .

Exit codes:
${EXIT_CODES.map(([code, meaning]) => `  ${String(code).padStart(2)}  ${meaning}`).join("\n")}`,
  subcommands: [
    serveCommand,
    proxyCommand,
    deployCommand,
    backupCommand,
    upCommand,
    tokenCommand,
    keysCommand,
    dbCommand,
    auditCommand,
    entityCommand,
    statusCommand,
    fleetCommand,
    servicesCommand,
    doctorCommand,
  ],
};

export function versionLine(): string {
  const info = buildInfo();
  return `axe-appliance ${info.version} (commit ${info.commit}, ${info.target}${info.builtAt ? `, built ${info.builtAt}` : ""})\n`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "--version" || argv[0] === "-V") {
    process.stdout.write(argv[1] === "--json" ? versionJson() : versionLine());
    return EXIT.ok;
  }
  try {
    return await dispatch(root, argv);
  } catch (error) {
    if (error instanceof AppError) {
      process.stderr.write(describeError(error));
      return error.exitCode;
    }
    process.stderr.write(`error: unexpected failure: ${(error as Error)?.stack ?? String(error)}\n`);
    return EXIT.unexpected;
  }
}

if (import.meta.main) {
  // No top-level await: the compiled binary is bytecode, which needs a plain module body.
  // Long-running modes never resolve; everything else exits when its work is done.
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
