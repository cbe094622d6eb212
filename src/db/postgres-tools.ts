/**
 * Finds the Postgres programs on this machine: $AXE_PG_BIN, PATH, Homebrew, Postgres.app and
 * Debian's /usr/lib/postgresql/N/bin, newest first.
 */
import { accessSync, constants, readdirSync } from "node:fs";
import { delimiter, join } from "node:path";
import { DatabaseError } from "../lib/errors.ts";

export const SERVER_TOOLS = ["initdb", "pg_ctl", "postgres"] as const;
export const DUMP_TOOLS = ["pg_dump", "pg_restore", "psql"] as const;

export function candidateDirs(): string[] {
  const versions = (base: string, pattern: RegExp) => {
    try {
      return readdirSync(base)
        .filter((name) => pattern.test(name))
        .sort((a, b) => Number(b.replace(/\D+/g, "") || 0) - Number(a.replace(/\D+/g, "") || 0))
        .map((name) => join(base, name));
    } catch {
      return [];
    }
  };
  return [
    ...(process.env.AXE_PG_BIN ? [process.env.AXE_PG_BIN] : []),
    ...(process.env.PATH ?? "").split(delimiter).filter(Boolean),
    ...versions("/opt/homebrew/opt", /^postgresql@\d+$/).map((d) => join(d, "bin")),
    "/opt/homebrew/bin",
    ...versions("/usr/local/opt", /^postgresql@\d+$/).map((d) => join(d, "bin")),
    "/Applications/Postgres.app/Contents/Versions/latest/bin",
    ...versions("/usr/lib/postgresql", /^\d+$/).map((d) => join(d, "bin")),
  ];
}

/** The first directory that has every tool named; throws a DatabaseError that says how to install them. */
export function findPostgresTools(tools: readonly string[]): string {
  for (const dir of candidateDirs()) {
    if (tools.every((tool) => isExecutable(join(dir, tool)))) return dir;
  }
  throw new DatabaseError(
    "POSTGRES_NOT_FOUND",
    `no directory with ${tools.join(", ")} found on PATH, in Homebrew, Postgres.app or /usr/lib/postgresql/*/bin`,
    "install Postgres: `brew install postgresql@17` on macOS, `apt-get install postgresql` on Debian; or set AXE_PG_BIN to its bin directory",
  );
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
