/**
 * The tool registry contract: one ToolDefinition per MCP tool. The server lists them, validates
 * input against `input`, checks `role`, runs `handler`, validates its result against `output`, returns
 * it as `structuredContent` (plus a JSON text block), and records an audit event for each call.
 *
 * @example
 * export const pingTool = defineTool({
 *   name: "ping", title: "Ping", description: "Answers pong.",
 *   input: z.strictObject({}), output: z.object({ pong: z.literal(true) }),
 *   annotations: READ_ONLY, role: "reader",
 *   async handler() { return { pong: true }; },
 * });
 */
import type { z } from "zod";
import type { Role } from "../../config/customers.ts";
import { ReasonedError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import type { Principal } from "../principal.ts";
import type { TransactionAudit } from "../store/audit.ts";
import type { DataStore } from "../store/data-store.ts";

/** What a handler gets besides its input. */
export interface ToolContext {
  /** Who is calling; every query must stay inside `principal.entity`. */
  principal: Principal;
  /** The data store: `run` / `statement` do work inside the caller's entity (data-common.ts wraps them). */
  store: DataStore;
  /** JSON-lines logger with the request id bound; never log PII or tokens. */
  logger: Logger;
  requestId: string;
  /** Aborted when the client goes away or the server shuts down. */
  signal: AbortSignal;
  /** For tools that change data: the call's audit row, which inEntity commits with the change. */
  writeAudit?: TransactionAudit;
}

/** MCP tool annotations, all four stated on purpose (clients read them as hints). */
export interface ToolAnnotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  /** True when the tool reaches outside frame's own database. */
  openWorldHint: boolean;
}

export const READ_ONLY: ToolAnnotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};

export interface ToolDefinition<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> {
  /** MCP tool name: lower_snake_case, unique. */
  name: string;
  title: string;
  /** What it does, when to use it, what it returns: the model reads this. */
  description: string;
  input: I;
  output: O;
  annotations: ToolAnnotations;
  /** Least role that may call it (admin > writer > reader). */
  role: Role;
  /** Returns the structured result; throw ToolError for an answer the caller can act on. */
  handler(ctx: ToolContext, input: z.output<I>): Promise<z.input<O>>;
}

/**
 * An expected failure inside a tool (bad reference, version conflict, not found). The caller gets
 * `isError: true` with the message and hint; the audit outcome is "error". Any other exception is a
 * bug: the caller gets a generic message and the log gets the details. Made from its reason, such
 * as `not_found`, `version_conflict`, `invalid_input` (the audit row's); `hint` says how to fix the call.
 */
export class ToolError extends ReasonedError {}

/** Identity function that keeps the input/output types tied to the handler. */
export function defineTool<I extends z.ZodObject, O extends z.ZodObject>(
  definition: ToolDefinition<I, O>,
): ToolDefinition<I, O> {
  return definition;
}
