/**
 * Errors the user can act on. Each carries a stable `code` (UPPER_SNAKE_CASE), a message that says
 * what failed and what to do next, and the exit code the CLI ends with. Expected failures never print a
 * stack trace: they are printed by `describeError` (main.ts, and a command that reports a failure
 * beside its own output) as `error: <message>` plus the hint, and the CLI exits with `exitCode`.
 *
 * @example
 * throw new ConfigError("CONFIG_INVALID", "customers.yaml:12: customers[0].tenant: expected a GUID");
 */

/** Every exit code the CLI ends with, by name; `axe-appliance --help` lists them (EXIT_CODES). */
export const EXIT = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  config: 3,
  database: 4,
  auth: 5,
  deploy: 6,
  backup: 7,
  backupPartial: 8,
  proxy: 9,
  doctor: 10,
  yellow: 11,
  red: 12,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class AppError extends Error {
  /** Exit code the CLI uses for this family of errors; see `axe-appliance --help`. */
  readonly exitCode: ExitCode = EXIT.unexpected;
  constructor(
    readonly code: string,
    message: string,
    /** The next command or step to try, printed on its own line. */
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad command line: unknown command or flag, missing argument. Exit 2. */
export class UsageError extends AppError {
  override readonly exitCode = EXIT.usage;
}

/** customers.yaml / appliance.yaml missing or invalid. Exit 3. */
export class ConfigError extends AppError {
  override readonly exitCode = EXIT.config;
}

/** Postgres missing, unreachable or a migration failed. Exit 4. */
export class DatabaseError extends AppError {
  override readonly exitCode = EXIT.database;
}

/**
 * An AppError that clients know by its `reason`: the lower_snake_case name they read on the wire
 * (frame's refusal body, the audit row and metric label of a refusal or a tool error), which never
 * changes. Its `code` is the same name in UPPER_SNAKE_CASE, like every other AppError's.
 */
export class ReasonedError extends AppError {
  constructor(
    readonly reason: string,
    message: string,
    hint?: string,
  ) {
    super(reason.toUpperCase(), message, hint);
  }
}

/** Token verification failures in frame, made from their reason; `status` is the HTTP status to answer with. */
export class AuthError extends ReasonedError {
  override readonly exitCode = EXIT.auth;
  constructor(
    reason: string,
    message: string,
    readonly status: 401 | 403 | 503 = 401,
    hint?: string,
  ) {
    super(reason, message, hint);
  }
}

/** A deploy step failed; the live color keeps serving. Exit 6. */
export class DeployError extends AppError {
  override readonly exitCode = EXIT.deploy;
}

/** A backup tier failed. Exit 7 (partial: some tiers succeeded, 8). */
export class BackupError extends AppError {
  override readonly exitCode = EXIT.backup;
}

/** The proxy refused an admin command (e.g. a switch to an unhealthy color) or is unreachable. Exit 9. */
export class ProxyError extends AppError {
  override readonly exitCode = EXIT.proxy;
}

/** Exit codes, documented in `axe-appliance --help`. */
export const EXIT_CODES: ReadonlyArray<readonly [ExitCode, string]> = [
  [EXIT.ok, "success"],
  [EXIT.unexpected, "unexpected failure (a bug: please report it with the output)"],
  [EXIT.usage, "usage error: unknown command or flag, missing argument"],
  [EXIT.config, "configuration error (customers.yaml, appliance.yaml, secret files)"],
  [EXIT.database, "database error (Postgres missing, unreachable, migration failed)"],
  [EXIT.auth, "authentication or key error"],
  [EXIT.deploy, "deploy failed (the live color keeps serving)"],
  [EXIT.backup, "backup failed"],
  [EXIT.backupPartial, "backup partial: some tiers failed, others succeeded"],
  [EXIT.proxy, "proxy: admin command refused, or the proxy is not running"],
  [EXIT.doctor, "doctor: one or more checks failed"],
  [EXIT.yellow, "status: yellow, something needs attention (fleet status: some machine is yellow)"],
  [EXIT.red, "status: red, something is down (fleet status: some machine is red or unreachable)"],
];

/** How an expected failure reads on stderr: `error: <message>`, then `hint: <hint>` when there is one. */
export function describeError(error: { message: string; hint?: string | undefined }): string {
  return `error: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ""}`;
}
