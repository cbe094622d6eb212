/**
 * The proxy and the blue/green pair: which color is live, each color's health and release.
 * Each color's /healthz is asked directly too, so a dead proxy still shows what the colors do; once
 * a color's release proves itself, an answer without its proof is not the color's (decision 70).
 */
import type { Config } from "../config/load.ts";
import { type ColorsState, readColors } from "../deploy/colors.ts";
import { HealthSchema } from "../frame/http/health.ts";
import {
  CHALLENGE_HEADER,
  colorMustProve,
  newChallenge,
  PROOF_HEADER,
  provesColor,
  readColorKey,
} from "../lib/color-proof.ts";
import { COLORS, type Color } from "../lib/colors.ts";
import { networkFailure } from "../lib/network-error.ts";
import type { ProxyStatus } from "../proxy/admin-client.ts";
import { proxySettings } from "../proxy/settings.ts";
import type { ProxySource } from "./proxy-source.ts";
import type { Check, ColorReport } from "./report.ts";

export interface ColorsResult {
  live: Color | null;
  release: string | null;
  colors: Record<Color, ColorReport>;
  /** What the live color's /healthz says of the database, if it answered. */
  database?: { reachable: boolean; migration: number };
  checks: Check[];
}

interface Healthz {
  ok: boolean;
  release?: string;
  database?: { reachable: boolean; migration: number };
  error?: string;
}

export async function checkColors(config: Config, proxy: ProxySource): Promise<ColorsResult> {
  const settings = proxySettings(config);
  const key = readColorKey(config.paths.secrets); // unreadable to an account that is not root: answers are taken as they come
  const checks: Check[] = [];
  let pointers: ColorsState = {};
  try {
    pointers = readColors(config.paths.data);
  } catch (error) {
    checks.push({ name: "colors", level: "fail", summary: oneLine((error as Error).message) });
  }
  const [seen, health] = await Promise.all([
    proxy.status().then(
      (s): ProxyStatus | Error => s,
      (e: Error) => e,
    ),
    Promise.all(
      COLORS.map((c) =>
        healthz(
          settings.upstreams[c] + settings.health.path,
          c,
          colorMustProve(config.paths.data, c) ? key : undefined,
        ),
      ),
    ),
  ]);
  const live = seen instanceof Error ? null : seen.live;
  if (seen instanceof Error)
    checks.push({ name: "proxy", level: "fail", summary: `proxy not reachable: ${oneLine(seen.message)}` });
  else
    checks.push({
      name: "proxy",
      level: seen.paused ? "warn" : "ok",
      summary: `${seen.paused ? "PAUSED, " : ""}listening on ${seen.listen}, ${live} live`,
    });
  const colors = {} as Record<Color, ColorReport>;
  COLORS.forEach((color, i) => {
    const h = health[i]!;
    const fromProxy = seen instanceof Error ? undefined : seen.colors[color];
    const release = h.release ?? fromProxy?.release ?? pointers[color]?.version ?? null;
    const isLive = live === color;
    const role = live === null ? "live unknown" : isLive ? "live" : "standby";
    colors[color] = { live: isLive, healthy: h.ok, release, error: h.ok ? null : (h.error ?? null) };
    const installed = pointers[color] !== undefined;
    if (h.ok)
      checks.push({ name: `color:${color}`, level: "ok", summary: `${role}, healthy, release ${release ?? "?"}` });
    else if (isLive) checks.push({ name: `color:${color}`, level: "fail", summary: `live but DOWN: ${h.error}` });
    else if (installed)
      checks.push({
        name: `color:${color}`,
        level: "warn",
        summary: `${role} DOWN (release ${release ?? "?"}): ${h.error}; rollback is not instant`,
      });
    else checks.push({ name: `color:${color}`, level: "ok", summary: `${role}, no release installed yet` });
  });
  const liveHealth = live ? health[COLORS.indexOf(live)] : undefined;
  return {
    live,
    release: live ? colors[live].release : null,
    colors,
    ...(liveHealth?.database ? { database: liveHealth.database } : {}),
    checks,
  };
}

/** One color's /healthz; with `key`, only an answer with the color's proof counts as the color's. */
async function healthz(url: string, color: Color, key: Buffer | undefined): Promise<Healthz> {
  const challenge = newChallenge();
  try {
    const response = await fetch(url, {
      signal: AbortSignal.timeout(3_000),
      headers: { [CHALLENGE_HEADER]: challenge },
    });
    if (key && !provesColor(key, color, challenge, response.headers.get(PROOF_HEADER))) {
      await response.body?.cancel();
      return { ok: false, error: `what answers on ${url} is not this install's ${color} (no valid ${PROOF_HEADER})` };
    }
    const health = HealthSchema.safeParse(await response.json().catch(() => undefined));
    return {
      ok: response.ok,
      ...(health.success ? { release: health.data.release, database: health.data.database } : {}),
      ...(response.ok ? {} : { error: `${url} answered HTTP ${response.status}` }),
    };
  } catch (error) {
    return { ok: false, error: `${url}: ${networkFailure(error)}` };
  }
}

export function oneLine(text: string): string {
  return text.split("\n")[0]!.slice(0, 200);
}
