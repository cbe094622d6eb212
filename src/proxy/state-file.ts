/**
 * {data_dir}/state/proxy.json: the live color, what we last knew of each color, and the MCP
 * session pins with each color's drain time (0600: session ids are bearer-like). Written
 * atomically (src/lib/atomic-write.ts) so a crash leaves the old or the new file, never half.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { writeFileAtomic } from "../lib/atomic-write.ts";
import { ConfigError } from "../lib/errors.ts";
import { ColorSchema } from "./admin-schema.ts";

const ColorState = z.object({
  release: z.string().nullable().default(null),
  healthy: z.boolean().default(false),
});

/** MCP session pins and the drain time of each color (color-selector.ts), so they outlive a restart. */
const PinState = z.object({
  sessions: z.record(z.string(), ColorSchema).default({}),
  drain_until: z.object({ blue: z.number().default(0), green: z.number().default(0) }).prefault({}),
});

export const ProxyStateSchema = z.object({
  version: z.literal(1),
  live: ColorSchema,
  colors: z.object({ blue: ColorState.prefault({}), green: ColorState.prefault({}) }),
  pins: PinState.prefault({}),
  updated_at: z.string(),
});
export type ProxyState = z.infer<typeof ProxyStateSchema>;

/** The saved state, or undefined when there is none yet. A corrupt file is an error, never ignored. */
export function readProxyState(file: string): ProxyState | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = ProxyStateSchema.safeParse(json);
  if (!parsed.success)
    throw new ConfigError(
      "PROXY_STATE_INVALID",
      `${file}: not a valid proxy state file (${parsed.error.issues[0]?.message ?? "not JSON"})`,
      `move it aside; the proxy then starts with blue live`,
    );
  return parsed.data;
}

export function writeProxyState(
  file: string,
  state: Omit<ProxyState, "version" | "updated_at" | "pins"> & Partial<Pick<ProxyState, "pins">>,
): void {
  const full: ProxyState = {
    version: 1,
    ...state,
    pins: state.pins ?? { sessions: {}, drain_until: { blue: 0, green: 0 } },
    updated_at: new Date().toISOString(),
  };
  writeFileAtomic(file, `${JSON.stringify(full, null, 2)}\n`, { mode: 0o600 }); // it holds MCP session ids
}
