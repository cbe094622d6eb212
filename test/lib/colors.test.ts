/** Blue and green are named in one place (src/lib/colors.ts); every schema and type takes them from there. */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { COLORS, otherColor } from "../../src/lib/colors.ts";
import { ColorSchema, COLORS as PROXY_COLORS, otherColor as proxyOtherColor } from "../../src/proxy/admin-schema.ts";
import { SwitchEventSchema } from "../../src/proxy/latency-history.ts";

const SRC = join(import.meta.dir, "..", "..", "src");
/** The pair as a type, a list or an enum, or the other-color rule, written out again. */
const SPELLED = [
  /["']blue["']\s*\|\s*["']green["']/,
  /["']green["']\s*\|\s*["']blue["']/,
  /\[\s*["']blue["']\s*,\s*["']green["']\s*\]/,
  /\[\s*["']green["']\s*,\s*["']blue["']\s*\]/,
  /===?\s*["']blue["']\s*\?\s*["']green["']\s*:\s*["']blue["']/,
];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

test("no module but src/lib/colors.ts spells out blue and green as a type, list, enum or the other-color rule", () => {
  const offenders = sources(SRC)
    .filter((file) => relative(SRC, file) !== join("lib", "colors.ts"))
    .flatMap((file) =>
      readFileSync(file, "utf8")
        .split("\n")
        .map((line, i) => ({ line, at: `${relative(SRC, file)}:${i + 1}` }))
        .filter(({ line }) => SPELLED.some((pattern) => pattern.test(line)))
        .map(({ line, at }) => `${at}: ${line.trim()}`),
    );
  expect(offenders).toEqual([]);
});

test("the proxy's wire format takes the colors from src/lib: the same list, the same rule", () => {
  expect(PROXY_COLORS).toBe(COLORS);
  expect(proxyOtherColor).toBe(otherColor);
  expect(ColorSchema.options).toEqual([...COLORS]);
  for (const color of COLORS) expect(SwitchEventSchema.parse({ time: "t", to: color }).to).toBe(color);
  expect(SwitchEventSchema.safeParse({ time: "t", to: "purple" }).success).toBe(false);
});
