/**
 * Every migration, in order. Files are embedded into the compiled binary as text.
 * Rule: expand only. A release may add; it removes what the previous release used only one
 * release later, because blue and green share the database during a switch.
 */
import meta from "./0001_meta.sql" with { type: "text" };
import serviceTokens from "./0002_service_tokens.sql" with { type: "text" };
import frameData from "./0003_frame_data.sql" with { type: "text" };
import auditDetail from "./0004_audit_detail.sql" with { type: "text" };
import auditChainPerLog from "./0005_audit_chain_per_log.sql" with { type: "text" };
import auditOperatorRows from "./0006_audit_operator_rows.sql" with { type: "text" };

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: "meta schema", sql: meta },
  { version: 2, name: "service tokens", sql: serviceTokens },
  { version: 3, name: "frame data: data keys, audit chain", sql: frameData },
  { version: 4, name: "audit detail: write subjects, refusal tallies, archive cuts", sql: auditDetail },
  { version: 5, name: "audit chain: one trigger function per log, no dynamic SQL per row", sql: auditChainPerLog },
  { version: 6, name: "audit: operator rows come from the database owner only", sql: auditOperatorRows },
];
