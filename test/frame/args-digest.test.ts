import { describe, expect, test } from "bun:test";
import { argsDigest, canonicalJson, MAX_CANONICAL_DEPTH } from "../../src/frame/args-digest.ts";

/** `[[[...]]]` nested `depth` deep, built without recursion. */
function nested(depth: number): unknown {
  let value: unknown = "x";
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe("canonical form of tool arguments", () => {
  test("keys are sorted at every level, undefined members dropped, arrays kept in order", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[3,{"y":2,"z":1}]},"b":1}',
    );
    expect(argsDigest({ a: 1, b: 2 })).toBe(argsDigest({ b: 2, a: 1 }));
    expect(argsDigest(undefined)).toBe(argsDigest({}));
  });

  test("matches JSON.stringify for scalars, strings with escapes and prototype-named keys", () => {
    for (const value of ['a"b\\c\u0001', 1.5, -0, true, null, "\ud800"])
      expect(canonicalJson(value)).toBe(JSON.stringify(value));
    const tricky = JSON.parse('{"__proto__":{"x":1},"constructor":"c","toString":[1]}');
    expect(canonicalJson(tricky)).toBe('{"__proto__":{"x":1},"constructor":"c","toString":[1]}');
  });

  test("10,000-deep nesting neither overflows the stack nor digests like a shallow value", () => {
    const deep = { note: nested(10_000) };
    const form = canonicalJson(deep);
    expect(form.length).toBeLessThan(1_000);
    expect(form).toContain('"…too deep"');
    expect(argsDigest(deep)).not.toBe(argsDigest({ note: nested(5) }));
    // Nesting inside the limit is written out whole.
    expect(canonicalJson(nested(MAX_CANONICAL_DEPTH - 1))).toBe(JSON.stringify(nested(MAX_CANONICAL_DEPTH - 1)));
  });

  test("a huge value is cut at the size limit with a marker, never held whole", () => {
    const wide = { list: Array.from({ length: 200_000 }, (_, i) => `item-${i}`) };
    const form = canonicalJson(wide, { maxLength: 10_000 });
    expect(form.length).toBeLessThan(10_100);
    expect(form.endsWith("…too large")).toBe(true);
  });
});

describe("what the digest sees of record values", () => {
  test("a __proto__ key is digested as a key, never turned into a prototype", async () => {
    const { withoutRecordValues } = await import("../../src/frame/tools/audit-args.ts");
    const args = JSON.parse('{"collection":"people","__proto__":{"x":1}}');
    expect(canonicalJson(withoutRecordValues(args))).toBe('{"__proto__":{"x":1},"collection":"people"}');
  });
});
