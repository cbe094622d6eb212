/**
 * MCP over Streamable HTTP, stateless: every POST gets its own SDK Server and web-standard
 * transport (no Mcp-Session-Id), bound to the principal that authentication produced, and is
 * answered with one application/json body (a client must accept both that and SSE). Tool
 * schemas are converted to JSON Schema once, at start-up, from the registry.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv-provider.js";
import { z } from "zod";
import type { Logger } from "../lib/log.ts";
import { releaseVersion } from "../lib/version.ts";
import { argsDigest } from "./args-digest.ts";
import type { AuditEvent, AuditSink } from "./audit-sink.ts";
import { bodyProblem } from "./http/body-check.ts";
import { jsonRpcError } from "./http/responses.ts";
import { hasRole, type Principal } from "./principal.ts";
import { TransactionAudit } from "./store/audit.ts";
import type { DataStore } from "./store/data-store.ts";
import { argumentProblem } from "./tools/argument-check.ts";
import { withoutRecordValues } from "./tools/audit-args.ts";
import { type ToolDefinition, ToolError } from "./tools/registry.ts";
import { registerCollectionResources } from "./tools/resources.ts";

export const SERVER_NAME = "axe-frame";
const INSTRUCTIONS =
  "frame holds the records of one company (entity). Every tool acts inside the caller's entity only. Call whoami first to see which entity and role you have.";

export interface McpDependencies {
  /** The data tools' way into the database (ToolContext.store). */
  store: DataStore;
  logger: Logger;
  audit: AuditSink;
  maxBodyBytes: number;
}

/** The registry, with each tool's JSON Schemas computed once. */
export class ToolCatalog {
  readonly list: Tool[];
  private readonly byName: Map<string, ToolDefinition>;

  constructor(tools: readonly ToolDefinition[]) {
    this.byName = new Map(tools.map((t) => [t.name, t]));
    if (this.byName.size !== tools.length) throw new Error("two tools share a name in src/frame/tools/index.ts");
    this.list = tools.map((t) => ({
      name: t.name,
      title: t.title,
      description: t.description,
      inputSchema: strictInputSchema(t),
      outputSchema: z.toJSONSchema(t.output, { io: "output" }) as Tool["outputSchema"],
      annotations: { title: t.title, ...t.annotations },
    }));
  }

  get(name: string): ToolDefinition | undefined {
    return this.byName.get(name);
  }
}

/** A tool's input JSON Schema; a tool whose input accepts unknown keys is refused at start-up. */
function strictInputSchema(tool: ToolDefinition): Tool["inputSchema"] {
  const schema = z.toJSONSchema(tool.input, { io: "input" }) as Tool["inputSchema"];
  if (schema.additionalProperties !== false)
    throw new Error(`tool ${tool.name}: its input must be a z.strictObject (unknown keys are refused, not dropped)`);
  return schema;
}

const sharedValidator = new AjvJsonSchemaValidator();

/** Answers one MCP HTTP request for `principal`. */
export async function handleMcpRequest(
  request: Request,
  principal: Principal,
  catalog: ToolCatalog,
  deps: McpDependencies,
  requestId: string,
): Promise<Response> {
  const server = new Server(
    { name: SERVER_NAME, title: "frame", version: releaseVersion() },
    {
      capabilities: { tools: { listChanged: false }, resources: { listChanged: false } },
      instructions: INSTRUCTIONS,
      jsonSchemaValidator: sharedValidator,
    },
  );
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: catalog.list }));
  registerCollectionResources(server, principal, deps, requestId);
  server.setRequestHandler(CallToolRequestSchema, async (call, extra) =>
    callTool(catalog, call.params.name, call.params.arguments ?? {}, principal, deps, requestId, extra.signal),
  );
  // One JSON body, not an SSE stream: frame sends nothing before the result (no progress, logging
  // or sampling), and the stream cost ~15% of a call's CPU plus two writes per response.
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    maxRequestBodySize: deps.maxBodyBytes,
    enableJsonResponse: true,
  });
  transport.onerror = (error) => deps.logger.debug("mcp transport", { requestId, error });
  await server.connect(transport);
  if (request.method !== "POST") return transport.handleRequest(request);
  // Read the body natively and hand it over parsed: the SDK's own reader walks a ReadableStream
  // chunk by chunk, ~6% of a get_record's CPU. A body that is too large or not JSON goes to the
  // SDK as it came, so it answers exactly as it always does (406/415 first, then 413 or -32700).
  const text = await request.text();
  const parsedBody = parseBody(text, deps.maxBodyBytes);
  const problem = parsedBody === undefined ? undefined : bodyProblem(parsedBody);
  if (problem) {
    void deps.audit
      .record({
        at: new Date(),
        who: principal.id,
        reason: problem.reason,
        customer: principal.customer,
        entity: principal.entity,
        ...(problem.tool ? { tool: problem.tool } : {}),
        outcome: "error",
        durationMs: 0,
        requestId,
        tokenKind: principal.kind,
      })
      .catch((error) => deps.logger.error("audit sink failed", { requestId, error }));
    return jsonRpcError(200, ErrorCode.InvalidParams, problem.message, {}, problem.id);
  }
  if (parsedBody !== undefined) return transport.handleRequest(request, { parsedBody });
  return transport.handleRequest(new Request(request.url, { method: "POST", headers: request.headers, body: text }));
}

function parseBody(text: string, maxBytes: number): unknown {
  if (text.length > maxBytes || Buffer.byteLength(text) > maxBytes) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function callTool(
  catalog: ToolCatalog,
  name: string,
  args: Record<string, unknown>,
  principal: Principal,
  deps: McpDependencies,
  requestId: string,
  signal: AbortSignal,
): Promise<CallToolResult> {
  const tool = catalog.get(name);
  if (!tool)
    throw new McpError(ErrorCode.InvalidParams, `unknown tool '${name}'; tools/list shows the tools frame has`);
  const started = performance.now();
  const logger = deps.logger.child({ requestId, tool: name });
  let digested: unknown = args; // the validated input once there is one
  const event = (outcome: "ok" | "error" | "denied", reason?: string): AuditEvent => ({
    at: new Date(),
    who: principal.id,
    ...(reason ? { reason } : {}),
    customer: principal.customer,
    entity: principal.entity,
    tool: name,
    outcome,
    durationMs: Math.round((performance.now() - started) * 100) / 100,
    argsDigest: argsDigest(withoutRecordValues(digested)), // record values may be PII: digest their types only
    requestId,
    tokenKind: principal.kind,
  });
  // A tool that changes data commits its audit row with the change (inEntity); reads are batched.
  const writeAudit = tool.annotations.readOnlyHint ? undefined : new TransactionAudit(() => event("ok"));
  const finish = (outcome: "ok" | "error" | "denied", result: CallToolResult, reason?: string) => {
    void deps.audit
      .record(writeAudit?.committed ? { ...writeAudit.sentEvent!, committed: true } : event(outcome, reason))
      .catch((error) => logger.error("audit sink failed", { error }));
    return result;
  };
  if (!hasRole(principal.role, tool.role))
    return finish(
      "denied",
      toolError(
        `${name} needs the ${tool.role} role; you are ${principal.role}`,
        "ask an admin for a higher role, or use a read-only tool",
      ),
      "role",
    );
  const problem = argumentProblem(args);
  const input = problem === undefined ? tool.input.safeParse(args) : undefined;
  if (!input?.success)
    return finish(
      "error",
      toolError(
        `invalid arguments for ${name}: ${problem ?? issueLines(input!.error)}`,
        "fix the arguments to match the tool's inputSchema and call again",
      ),
      "invalid_input",
    );
  digested = input.data;
  try {
    const output = tool.output.parse(
      await tool.handler({ principal, store: deps.store, logger, requestId, signal, writeAudit }, input.data),
    );
    return finish("ok", {
      content: [{ type: "text", text: JSON.stringify(output) }],
      structuredContent: output as Record<string, unknown>,
    });
  } catch (error) {
    if (error instanceof ToolError) return finish("error", toolError(error.message, error.hint), error.reason);
    logger.error("tool failed", { error });
    return finish(
      "error",
      toolError(
        `${name} failed inside frame (request ${requestId}); this is a bug, not your input`,
        "retry once; if it fails again, report the request id",
      ),
      "internal",
    );
  }
}

/** A zod error as one line: `path: message` for the first few issues. */
function issueLines(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.map(String).join(".") : "arguments"}: ${issue.message}`)
    .join("; ");
}

function toolError(message: string, hint?: string): CallToolResult {
  return { isError: true, content: [{ type: "text", text: hint ? `${message}. ${hint}.` : message }] };
}
