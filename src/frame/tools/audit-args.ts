/**
 * What of a tool call's arguments may go into the audit digest: everything but record values.
 * Field values (`values`, `filters`) become their JSON type and a full-text `query` becomes a
 * placeholder, because a digest of a low-entropy value (an e-mail, a phone number) can be reversed
 * by trying candidates. Ids, collection names, versions and paging stay, so equal calls still match.
 *
 * @example
 * argsDigest(withoutRecordValues({ collection: "people", values: { email: "a@b.c" } }));
 * // digest of { collection: "people", values: { email: "string" } }
 */
const VALUE_KEYS = new Set(["values", "filters"]);

export function withoutRecordValues(args: unknown): unknown {
  if (!args || typeof args !== "object" || Array.isArray(args)) return args;
  const out: Record<string, unknown> = Object.create(null); // a "__proto__" key stays a key, never a prototype
  for (const [key, value] of Object.entries(args as Record<string, unknown>)) {
    if (VALUE_KEYS.has(key) && value && typeof value === "object" && !Array.isArray(value))
      out[key] = Object.fromEntries(
        Object.keys(value).map((field) => [field, typeOf((value as Record<string, unknown>)[field])]),
      );
    else if (VALUE_KEYS.has(key) || key === "query") out[key] = typeOf(value);
    else out[key] = value;
  }
  return out;
}

function typeOf(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
}
