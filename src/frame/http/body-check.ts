/**
 * Checks a parsed JSON-RPC body before the MCP transport sees it: nesting deeper than
 * MAX_BODY_DEPTH is refused (no tool, digest or validator then walks a 10,000-deep value), and a
 * tools/call whose params have the wrong shape (arguments an array, null or a string) gets
 * -32602 with one readable line instead of the SDK's -32603 and a raw schema dump.
 *
 * @example
 * const problem = bodyProblem(JSON.parse(text));
 * if (problem) return jsonRpcError(200, -32602, problem.message, {}, problem.id);
 */
import { MAX_CANONICAL_DEPTH } from "../args-digest.ts";

/** The deepest nesting a request body may have (objects and arrays, counted from the body itself). */
export const MAX_BODY_DEPTH = MAX_CANONICAL_DEPTH;

export interface BodyProblem {
  /** Audit reason: `too_deep` or `invalid_params`. */
  reason: "too_deep" | "invalid_params";
  message: string;
  /** The JSON-RPC id of the offending message, when it has a usable one. */
  id: string | number | null;
  /** The tool a tools/call named, when it named one. */
  tool?: string;
}

/** Why the body must be refused before any handler runs, or undefined. */
export function bodyProblem(body: unknown): BodyProblem | undefined {
  const messages = Array.isArray(body) ? body : [body];
  if (depthOver(body, MAX_BODY_DEPTH)) {
    const first = messages[0] as Record<string, unknown> | undefined;
    return {
      reason: "too_deep",
      message: `Invalid params: the request body is nested deeper than ${MAX_BODY_DEPTH} levels; send flat values`,
      id: idOf(first),
      ...toolOf(first),
    };
  }
  for (const message of messages) {
    if (!isObject(message)) continue;
    const params = message.params;
    let problem: string | undefined;
    if (message.method === "tools/call")
      problem = !isObject(params)
        ? "params must be an object with name and arguments"
        : typeof params.name !== "string"
          ? "params.name must be the tool's name as a string"
          : params.arguments !== undefined && !isObject(params.arguments)
            ? `arguments must be a JSON object of argument names to values, not ${kindOf(params.arguments)}`
            : undefined;
    else if (message.method === "resources/read")
      problem =
        !isObject(params) || typeof params.uri !== "string" ? "params.uri must be a resource URI string" : undefined;
    if (problem)
      return { reason: "invalid_params", message: `Invalid params: ${problem}`, id: idOf(message), ...toolOf(message) };
  }
  return undefined;
}

/** True when `value` nests containers more than `limit` deep; walks with an explicit stack. */
function depthOver(value: unknown, limit: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  while (stack.length) {
    const item = stack.pop()!;
    if (item.value === null || typeof item.value !== "object") continue;
    if (item.depth > limit) return true;
    for (const child of Object.values(item.value)) stack.push({ value: child, depth: item.depth + 1 });
  }
  return false;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

function idOf(message: unknown): string | number | null {
  const id = isObject(message) ? message.id : undefined;
  return typeof id === "string" || typeof id === "number" ? id : null;
}

/** The shape of a tool name; anything else (a NUL, a newline, 10 KB) is the caller's and stays out of the audit row. */
const TOOL_NAME = /^[\w./-]{1,64}$/;

function toolOf(message: unknown): { tool?: string } {
  const params = isObject(message) && message.method === "tools/call" ? message.params : undefined;
  const name = isObject(params) ? params.name : undefined;
  return typeof name === "string" && TOOL_NAME.test(name) ? { tool: name } : {};
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}
