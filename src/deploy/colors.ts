/**
 * Which release each color runs: {data_dir}/state/colors.json, written atomically. The service
 * backends read it to start a color on its release; the proxy decides which color is live.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../lib/atomic-write.ts";

export const COLORS = ["blue", "green"] as const;
export type Color = (typeof COLORS)[number];
export const other = (color: Color): Color => (color === "blue" ? "green" : "blue");

const ColorPointer = z.object({ version: z.string(), since: z.string() });
const ColorsSchema = z.object({ blue: ColorPointer.optional(), green: ColorPointer.optional() });
export type ColorsState = z.output<typeof ColorsSchema>;

export function colorsFile(dataDir: string): string {
  return join(dataDir, "state", "colors.json");
}

export function readColors(dataDir: string): ColorsState {
  const file = colorsFile(dataDir);
  if (!existsSync(file)) return {};
  const parsed = ColorsSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  return parsed.success ? parsed.data : {};
}

/** Points `color` at `version`; returns the previous state (to restore on failure). */
export function pointColor(dataDir: string, color: Color, version: string): ColorsState {
  const before = readColors(dataDir);
  writeColors(dataDir, { ...before, [color]: { version, since: new Date().toISOString() } });
  return before;
}

export function writeColors(dataDir: string, state: ColorsState): void {
  writeFileAtomic(colorsFile(dataDir), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
}
