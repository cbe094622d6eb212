/**
 * Setting a login role's password without the password ever reaching the server in clear: the
 * SCRAM-SHA-256 secret Postgres would store is computed here and sent instead. ALTER ROLE ...
 * PASSWORD 'clear text' goes into the server's log under `log_statement = ddl` (or `all`, with
 * the bind parameters) and shows in pg_stat_activity while it runs; the secret logs in nobody.
 *
 * @example
 * await setRolePassword(owner, "frame_app", readSecretFile(passwordFile));
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import type postgres from "postgres";
import { DatabaseError } from "../lib/errors.ts";

/** Postgres' own choices (scram-common.h): 4096 iterations, a 16-byte salt. */
const ITERATIONS = 4096;
const SALT_BYTES = 16;

/**
 * The SCRAM-SHA-256 secret for `password` (RFC 5802, 7677), as pg_authid stores it. Only printable
 * ASCII passwords: SASLprep leaves those as they are, so no normalisation is needed here.
 */
export function scramSecret(password: string, salt: Buffer = randomBytes(SALT_BYTES)): string {
  if (!/^[\x21-\x7e]+$/.test(password))
    throw new DatabaseError(
      "DATABASE_ROLE_PASSWORD",
      "a role password must be printable ASCII without spaces",
      "the appliance makes base64url ones: delete frame-app.password under secrets_dir and start serve again; it makes a new one and sets it",
    );
  const salted = pbkdf2Sync(password, salt, ITERATIONS, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  const b64 = (b: Buffer) => b.toString("base64");
  return `SCRAM-SHA-256$${ITERATIONS}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}

/** ALTER ROLE takes no bind parameters: Postgres quotes the role and the secret with format(%I, %L). */
export async function setRolePassword(sql: postgres.Sql | postgres.TransactionSql, role: string, password: string) {
  const [row] = await sql<{ statement: string }[]>`select pg_catalog.format(
    'alter role %I with login password %L', ${role}::text, ${scramSecret(password)}::text) as statement`;
  await sql.unsafe(row!.statement);
}
