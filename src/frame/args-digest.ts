/**
 * The digest an audit row keeps of a call's arguments: sha256 of their canonical JSON (keys sorted,
 * so equal calls have equal digests). The canonical form is built with an explicit stack and is
 * bounded in depth and length, so no argument, however deep or large, can overflow the stack or
 * hold the sink up (a recursive form died on 10,000-deep nesting and lost the audit row).
 *
 * @example
 * argsDigest({ collection: "people", id: "0b7d..." }); // 64 hex characters
 */
import { createHash } from "node:crypto";

/** Nesting deeper than this is written as a marker; JSON-RPC bodies deeper than it never reach a tool. */
export const MAX_CANONICAL_DEPTH = 64;
/** The canonical form is cut, with a marker, past this many characters. */
export const MAX_CANONICAL_LENGTH = 2_000_000;

const TOO_DEEP = '"…too deep"';
const TOO_LARGE = "…too large";

export interface CanonicalOptions {
  maxDepth?: number;
  maxLength?: number;
}

/** sha256 (hex) of the canonical JSON of `args` (undefined counts as `{}`). */
export function argsDigest(args: unknown): string {
  return createHash("sha256")
    .update(canonicalJson(args ?? {}))
    .digest("hex");
}

type Work = string | { value: unknown; depth: number };

/**
 * JSON with object keys sorted (own enumerable keys only), members whose value is undefined
 * dropped; nesting past `maxDepth` becomes `"…too deep"` and output past `maxLength` ends in
 * `…too large`. Scalars are written exactly as JSON.stringify writes them.
 */
export function canonicalJson(value: unknown, options: CanonicalOptions = {}): string {
  const maxDepth = options.maxDepth ?? MAX_CANONICAL_DEPTH;
  const maxLength = options.maxLength ?? MAX_CANONICAL_LENGTH;
  const out: string[] = [];
  let length = 0;
  const stack: Work[] = [{ value, depth: 0 }];
  while (stack.length) {
    const item = stack.pop()!;
    const piece = typeof item === "string" ? item : open(item.value, item.depth, maxDepth, maxLength, stack);
    length += piece.length;
    if (length > maxLength) {
      out.push(TOO_LARGE);
      break;
    }
    out.push(piece);
  }
  return out.join("");
}

/** The text that opens `value`; for a container, its members and closing go onto `stack` (last first). */
function open(value: unknown, depth: number, maxDepth: number, maxLength: number, stack: Work[]): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (depth >= maxDepth) return TOO_DEEP;
  if (Array.isArray(value)) {
    // More members than characters allowed cannot fit anyway: never stack more than that.
    const count = Math.min(value.length, maxLength + 1);
    stack.push("]");
    for (let i = count - 1; i >= 0; i--) {
      stack.push({ value: value[i], depth: depth + 1 });
      if (i > 0) stack.push(",");
    }
    return "[";
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  const count = Math.min(keys.length, maxLength + 1);
  stack.push("}");
  for (let i = count - 1; i >= 0; i--) {
    const key = keys[i]!;
    stack.push({ value: record[key], depth: depth + 1 });
    stack.push(`${i > 0 ? "," : ""}${JSON.stringify(key)}:`);
  }
  return "{";
}
