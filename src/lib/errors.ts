/**
 * Errors the user can act on. Each carries a stable `code`, a message that says what failed
 * and what to do next, and the exit code the CLI ends with. Expected failures never print a
 * stack trace: main.ts prints `error: <message>` (plus the hint) and exits with `exitCode`.
 *
 * @example
 * throw new ConfigError("CONFIG_INVALID", "customers.yaml:12: customers[0].tenant: expected a GUID");
 */
export class AppError extends Error {
  /** Exit code the CLI uses for this family of errors; see `axe-appliance --help`. */
  readonly exitCode: number = 1;
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
  override readonly exitCode = 2;
}

/** customers.yaml / appliance.yaml missing or invalid. Exit 3. */
export class ConfigError extends AppError {
  override readonly exitCode = 3;
}

/** Postgres missing, unreachable or a migration failed. Exit 4. */
export class DatabaseError extends AppError {
  override readonly exitCode = 4;
}

/** Token verification failures in frame; `status` is the HTTP status to answer with. */
export class AuthError extends AppError {
  override readonly exitCode = 5;
  constructor(
    code: string,
    message: string,
    readonly status: 401 | 403 | 503 = 401,
    hint?: string,
  ) {
    super(code, message, hint);
  }
}

/** A deploy step failed; the live color keeps serving. Exit 6. */
export class DeployError extends AppError {
  override readonly exitCode = 6;
}

/** A backup tier failed. Exit 7 (partial: some tiers succeeded, 8). */
export class BackupError extends AppError {
  override readonly exitCode = 7;
}

/** The proxy refused an admin command (e.g. a switch to an unhealthy color) or is unreachable. Exit 9. */
export class ProxyError extends AppError {
  override readonly exitCode = 9;
}

/** Exit codes, documented in `axe-appliance --help`. */
export const EXIT_CODES: ReadonlyArray<readonly [number, string]> = [
  [0, "success"],
  [1, "unexpected failure (a bug: please report it with the output)"],
  [2, "usage error: unknown command or flag, missing argument"],
  [3, "configuration error (customers.yaml, appliance.yaml, secret files)"],
  [4, "database error (Postgres missing, unreachable, migration failed)"],
  [5, "authentication or key error"],
  [6, "deploy failed (the live color keeps serving)"],
  [7, "backup failed"],
  [8, "backup partial: some tiers failed, others succeeded"],
  [9, "proxy: admin command refused, or the proxy is not running"],
  [10, "doctor: one or more checks failed"],
  [11, "status: yellow, something needs attention (fleet status: some machine is yellow)"],
  [12, "status: red, something is down (fleet status: some machine is red or unreachable)"],
];
