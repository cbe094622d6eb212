/**
 * A service token for the customer's first entity, for a client of frame on this machine: the
 * deploy gate's short-lived reader token, `up --dev`'s admin token. The database is opened as
 * configured (an embedded cluster is left running: the colors use it).
 */
import type { Role } from "../config/customers.ts";
import type { Config } from "../config/load.ts";
import { connect, openDatabase } from "../db/connect.ts";
import { issueServiceToken, revokeServiceToken } from "../frame/auth/service-tokens.ts";

export interface ClientToken {
  token: string;
  entity: string;
  expiresAt: Date;
  /** Revokes it now (the gate's token outlives no check). */
  revoke(): Promise<void>;
}

/** Issues the token and hands it to `use` while its database connection is open. */
export async function withClientToken<T>(
  config: Config,
  /** `who` names the client in meta.audit_log's rows for the token (`deploy`, `up --dev`). */
  grant: { role: Role; name: string; expiresInMs: number; who: string },
  use: (issued: ClientToken) => Promise<T>,
): Promise<T> {
  const db = await openDatabase(config);
  const sql = connect(db.target, { max: 1, catalogOnly: true });
  try {
    const entity = config.customer.entities[0]!.name;
    const { token, record } = await issueServiceToken(sql, config.paths.secrets, {
      customer: config.customer.name,
      entity,
      ...grant,
    });
    const revoke = async () =>
      void (await revokeServiceToken(sql, config.customer.name, record.id, grant.who).catch(() => false));
    return await use({ token, entity, expiresAt: record.expiresAt, revoke });
  } finally {
    await sql.end({ timeout: 5 });
  }
}
