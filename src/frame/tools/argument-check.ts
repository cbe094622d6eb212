/**
 * What no tool argument may hold, wherever it sits, checked before a tool's own schema: a lone
 * UTF-16 surrogate (Postgres refuses it in JSON and text, and a blind index would hash it as
 * U+FFFD) and a key named `__proto__` (a plain-object copy turns it into a prototype change and
 * drops it silently, so a filter on it would match everything). The walk uses an explicit stack.
 *
 * @example
 * argumentProblem({ values: { name: "\ud800" } }); // "values.name: contains a lone UTF-16 surrogate ..."
 */
import { SURROGATE_MESSAGE } from "../store/fields.ts";

/** The first problem found, as `path: what`, or undefined when the arguments may go on. */
export function argumentProblem(args: unknown): string | undefined {
  const stack: Array<{ value: unknown; path: string }> = [{ value: args, path: "" }];
  while (stack.length) {
    const { value, path } = stack.pop()!;
    if (typeof value === "string") {
      if (!value.isWellFormed()) return `${path || "arguments"}: ${SURROGATE_MESSAGE}`;
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}[${i}]` });
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const at = path ? `${path}.${key}` : key;
      if (!key.isWellFormed()) return `${path || "arguments"}: a key ${SURROGATE_MESSAGE}`;
      if (key === "__proto__") return `${at}: __proto__ is a reserved name and never a field or argument`;
      stack.push({ value: (value as Record<string, unknown>)[key], path: at });
    }
  }
  return undefined;
}
