/** The two copies of frame: one serves (live), the other waits as the standby or takes the next release. */
export const COLORS = ["blue", "green"] as const;
export type Color = (typeof COLORS)[number];

export const otherColor = (color: Color): Color => (color === "blue" ? "green" : "blue");
