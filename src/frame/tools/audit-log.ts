/** query_audit_log (admin): the entity's audit rows, newest first. */
import { z } from "zod";
import { queryAudit } from "../store/audit.ts";
import { isDate, isDateTime, NUL_MESSAGE, noNul } from "../store/fields.ts";
import { inEntity } from "./data-common.ts";
import { defineTool, READ_ONLY } from "./registry.ts";

export const queryAuditLogTool = defineTool({
  name: "query_audit_log",
  title: "Query the audit log",
  description:
    "Admin only. Your entity's audit log, newest first: who called which tool, the outcome, the duration, a digest of the " +
    "arguments (never the arguments) and, for a change, the record or collection and the version it made. Filter by tool, outcome, who or since (ISO time); page with before_seq = the last seq you saw.",
  input: z.strictObject({
    tool: z.string().max(64).refine(noNul, NUL_MESSAGE).optional(),
    outcome: z.enum(["ok", "error", "denied", "refused"]).optional(),
    who: z.string().max(200).refine(noNul, NUL_MESSAGE).optional(),
    since: z
      .string()
      .max(40)
      .refine(
        (s) => isDate(s) || isDateTime(s),
        "expected a date (YYYY-MM-DD, years 0001-9999) or an ISO 8601 time with zone that exists, e.g. 2026-01-31T00:00:00Z",
      )
      .optional()
      .describe("ISO 8601 date or time with zone, e.g. 2026-01-31T00:00:00Z"),
    before_seq: z.number().int().min(1).optional(),
    limit: z.number().int().min(1).max(200).default(50),
  }),
  output: z.object({
    rows: z.array(
      z.object({
        seq: z.number().int(),
        at: z.string(),
        who: z.string(),
        token_kind: z.string().nullable(),
        tool: z.string().nullable(),
        outcome: z.string(),
        reason: z.string().nullable(),
        status: z.number().int().nullable(),
        duration_ms: z.number().int(),
        args_digest: z.string().nullable(),
        request_id: z.string().nullable(),
        detail: z.record(z.string(), z.unknown()).nullable(),
        hash: z.string(),
      }),
    ),
  }),
  annotations: READ_ONLY,
  role: "admin",
  async handler(ctx, input) {
    const since = input.since === undefined ? undefined : new Date(input.since);
    const rows = await inEntity(ctx, (tx) =>
      queryAudit(tx, {
        tool: input.tool,
        outcome: input.outcome,
        who: input.who,
        since,
        beforeSeq: input.before_seq,
        limit: input.limit,
      }),
    );
    return {
      rows: rows.map((r) => ({
        seq: r.seq,
        at: r.at.toISOString(),
        who: r.who,
        token_kind: r.tokenKind,
        tool: r.tool,
        outcome: r.outcome,
        reason: r.reason,
        status: r.status,
        duration_ms: r.durationMs,
        args_digest: r.argsDigest,
        request_id: r.requestId,
        detail: r.detail,
        hash: r.hash,
      })),
    };
  },
});
