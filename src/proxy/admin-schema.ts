/**
 * The admin API's wire format, shared by the server (admin-api.ts) and its client
 * (admin-client.ts): zod schemas for every body that crosses the Unix socket.
 */
import { z } from "zod";
import { COLORS, type Color, otherColor } from "../lib/colors.ts";

export { COLORS, type Color, otherColor };
export const ColorSchema = z.enum(COLORS);

export const ColorStatusSchema = z.object({
  color: ColorSchema,
  upstream: z.string(),
  healthy: z.boolean(),
  /** The release the color reported on its last good /healthz, if any. */
  release: z.string().nullable(),
  inflight: z.number().int(),
  last_check: z.string().nullable(),
  last_error: z.string().nullable(),
});
export type ColorStatus = z.infer<typeof ColorStatusSchema>;

export const ProxyStatusSchema = z.object({
  service: z.literal("axe-proxy"),
  live: ColorSchema,
  paused: z.boolean(),
  listen: z.string(),
  /** MCP sessions pinned to a color. */
  sessions: z.number().int(),
  colors: z.object({ blue: ColorStatusSchema, green: ColorStatusSchema }),
});
export type ProxyStatus = z.infer<typeof ProxyStatusSchema>;

export const SwitchRequestSchema = z.strictObject({ color: ColorSchema });
/** POST /check: probe the color's /healthz now (a deploy about to switch need not wait for the timer). */
export const CheckRequestSchema = z.strictObject({ color: ColorSchema });
export const SwitchResultSchema = z.object({ live: ColorSchema, previous: ColorSchema, changed: z.boolean() });
export type SwitchResult = z.infer<typeof SwitchResultSchema>;

export const DrainRequestSchema = z.strictObject({
  /** Default: the color that is not live. */
  color: ColorSchema.optional(),
  /** Default: proxy.drain_timeout_ms. */
  timeout_ms: z.number().int().positive().max(600_000).optional(),
});
export const DrainResultSchema = z.object({
  color: ColorSchema,
  drained: z.boolean(),
  inflight: z.number().int(),
  /** Pins whose drain time passed while waiting. */
  sessions_released: z.number().int(),
  /** MCP sessions still pinned to the color (their drain time has not passed). */
  sessions: z.number().int().default(0),
});
export type DrainResult = z.infer<typeof DrainResultSchema>;

export const PauseResultSchema = z.object({ paused: z.boolean(), held: z.number().int() });
export type PauseResult = z.infer<typeof PauseResultSchema>;

export const AdminErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional() }),
});
