/**
 * {data_dir}/state/proxy.json: the live color and what we last knew of each color. Written
 * atomically (temp file, fsync, rename) so a crash leaves the old or the new file, never half.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { ConfigError } from "../lib/errors.ts";
import { ColorSchema } from "./admin-schema.ts";

const ColorState = z.object({
  release: z.string().nullable().default(null),
  healthy: z.boolean().default(false),
});

export const ProxyStateSchema = z.object({
  version: z.literal(1),
  live: ColorSchema,
  colors: z.object({ blue: ColorState.prefault({}), green: ColorState.prefault({}) }),
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

export function writeProxyState(file: string, state: Omit<ProxyState, "version" | "updated_at">): void {
  const full: ProxyState = { version: 1, ...state, updated_at: new Date().toISOString() };
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  const fd = openSync(temp, "w", 0o644);
  try {
    writeSync(fd, `${JSON.stringify(full, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
  const dir = openSync(dirname(file), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
