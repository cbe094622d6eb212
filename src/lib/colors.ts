import { join } from "node:path";

/** The two copies of frame: one serves (live), the other waits as the standby or takes the next release. */
export const COLORS = ["blue", "green"] as const;
export type Color = (typeof COLORS)[number];

export const otherColor = (color: Color): Color => (color === "blue" ? "green" : "blue");

/** {data_dir}/current/<color>: the link to the release the color runs (written by src/deploy/colors.ts). */
export function currentLink(dataDir: string, color: Color): string {
  return join(dataDir, "current", color);
}
