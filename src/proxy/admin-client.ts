/**
 * Talks to a running proxy over its admin socket. The CLI (`axe-appliance proxy status|switch|
 * pause|resume`) and the deploy receiver call these; a refusal arrives as a ProxyError.
 *
 * @example
 * const status = await proxyStatus(socketPath);
 * if (status.live === "blue") await switchLiveColor(socketPath, "green");
 */
import type { z } from "zod";
import { ProxyError } from "../lib/errors.ts";
import { networkFailure } from "../lib/network-error.ts";
import {
  AdminErrorSchema,
  type Color,
  type ColorStatus,
  ColorStatusSchema,
  type DrainResult,
  DrainResultSchema,
  type PauseResult,
  PauseResultSchema,
  type ProxyStatus,
  ProxyStatusSchema,
  type SwitchResult,
  SwitchResultSchema,
} from "./admin-schema.ts";

export type { Color, ColorStatus, DrainResult, PauseResult, ProxyStatus, SwitchResult } from "./admin-schema.ts";

/** Live color, paused flag, and per color: upstream, health, release, in-flight requests. */
export async function proxyStatus(socketPath: string): Promise<ProxyStatus> {
  return call(socketPath, "GET", "/status", undefined, ProxyStatusSchema);
}

/** Makes `color` live; refused (PROXY_COLOR_UNHEALTHY) when that color is not healthy. */
/** Has the proxy probe `color` now and returns what it then sees (PROXY_NOT_FOUND from a proxy without /check). */
export async function checkColor(socketPath: string, color: Color): Promise<ColorStatus> {
  return call(socketPath, "POST", "/check", { color }, ColorStatusSchema);
}

export async function switchLiveColor(socketPath: string, color: Color): Promise<SwitchResult> {
  return call(socketPath, "POST", "/switch", { color }, SwitchResultSchema);
}

/** Waits until `color` (default: the passive one) has no in-flight request, bounded by the drain timeout. */
export async function drainColor(
  socketPath: string,
  options: { color?: Color; timeoutMs?: number } = {},
): Promise<DrainResult> {
  const body = {
    ...(options.color ? { color: options.color } : {}),
    ...(options.timeoutMs ? { timeout_ms: options.timeoutMs } : {}),
  };
  return call(socketPath, "POST", "/drain", body, DrainResultSchema);
}

/** Holds new requests (each for at most proxy.pause_timeout_ms, then 503) until resumeProxy. */
export async function pauseProxy(socketPath: string): Promise<PauseResult> {
  return call(socketPath, "POST", "/pause", {}, PauseResultSchema);
}

/** Releases the held requests and lets new ones through. */
export async function resumeProxy(socketPath: string): Promise<PauseResult> {
  return call(socketPath, "POST", "/resume", {}, PauseResultSchema);
}

/** The Prometheus text exposition of the proxy's counters. */
export async function proxyMetrics(socketPath: string): Promise<string> {
  const response = await send(socketPath, "GET", "/metrics");
  if (!response.ok) throw await refusal(response);
  return response.text();
}

async function call<S extends z.ZodType>(
  socketPath: string,
  method: string,
  path: string,
  body: unknown,
  schema: S,
): Promise<z.infer<S>> {
  const response = await send(socketPath, method, path, body);
  if (!response.ok) throw await refusal(response);
  const parsed = schema.safeParse(await response.json().catch(() => undefined));
  if (!parsed.success)
    throw new ProxyError(
      "PROXY_BAD_ANSWER",
      `the proxy at ${socketPath} answered ${path} with an unexpected body`,
      "is the proxy the same release as this command?",
    );
  return parsed.data;
}

async function send(socketPath: string, method: string, path: string, body?: unknown): Promise<Response> {
  try {
    return await fetch(`http://axe-proxy${path}`, {
      unix: socketPath,
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
      signal: AbortSignal.timeout(path === "/drain" ? 660_000 : 15_000),
    });
  } catch (error) {
    throw new ProxyError(
      "PROXY_UNREACHABLE",
      `cannot reach the proxy's admin socket ${socketPath}: ${networkFailure(error)}`,
      "is the proxy running? Start it with `axe-appliance proxy run`, or check `axe-appliance status`",
    );
  }
}

async function refusal(response: Response): Promise<ProxyError> {
  const parsed = AdminErrorSchema.safeParse(await response.json().catch(() => undefined));
  if (parsed.success) return new ProxyError(parsed.data.error.code, parsed.data.error.message, parsed.data.error.hint);
  return new ProxyError("PROXY_BAD_ANSWER", `the proxy answered HTTP ${response.status}`);
}
