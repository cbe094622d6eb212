/**
 * The admin API: HTTP/JSON on the proxy's Unix socket (mode 0600), never on TCP.
 * GET /status, POST /switch {color}, POST /check {color} (probe it now), POST /drain {color?, timeout_ms?}, POST /pause,
 * POST /resume, GET /metrics, GET /latency (last hour, per minute), GET /page (the operator's
 * status page, when the proxy was given one). Bodies are checked with zod; a refusal is 409 with
 * {error: {code, message, hint}}, which admin-client.ts turns back into a ProxyError.
 */
import { existsSync } from "node:fs";
import type { z } from "zod";
import { AppError, ProxyError } from "../lib/errors.ts";
import { PAGE_HEADERS } from "../lib/page-headers.ts";
import { proxyStatus } from "./admin-client.ts";
import {
  CheckRequestSchema,
  type Color,
  type ColorStatus,
  DrainRequestSchema,
  type DrainResult,
  type PauseResult,
  type ProxyStatus,
  SwitchRequestSchema,
  type SwitchResult,
} from "./admin-schema.ts";
import type { LatencySeries } from "./latency-history.ts";
import { bindPrivateSocket } from "./private-socket.ts";

/** What the admin API can ask of the running proxy. */
export interface ProxyControl {
  status(): ProxyStatus;
  switchTo(color: Color): SwitchResult;
  /** Probes `color` now (counted like a scheduled probe) and returns what the proxy then sees. */
  check?(color: Color): Promise<ColorStatus>;
  drain(color: Color | undefined, timeoutMs: number | undefined): Promise<DrainResult>;
  pause(): PauseResult;
  resume(): PauseResult;
  metrics(): Promise<string>;
  /** Per-minute latency of the last hour. */
  latency?(): LatencySeries;
  /** The operator's status page (HTML). */
  statusPage?(): Promise<string>;
}

export function adminHandler(control: ProxyControl): (request: Request) => Promise<Response> {
  return async (request) => {
    const route = `${request.method} ${new URL(request.url).pathname}`;
    try {
      switch (route) {
        case "GET /status":
          return json(200, control.status());
        case "POST /switch":
          return json(200, control.switchTo((await body(request, SwitchRequestSchema)).color));
        case "POST /check":
          if (control.check) return json(200, await control.check((await body(request, CheckRequestSchema)).color));
          break;
        case "POST /drain": {
          const { color, timeout_ms } = await body(request, DrainRequestSchema);
          return json(200, await control.drain(color, timeout_ms));
        }
        case "POST /pause":
          return json(200, control.pause());
        case "POST /resume":
          return json(200, control.resume());
        case "GET /metrics":
          return new Response(await control.metrics(), { headers: { "content-type": "text/plain; version=0.0.4" } });
        case "GET /latency":
          if (control.latency) return json(200, control.latency());
          break;
        case "GET /page":
          if (control.statusPage)
            return new Response(await control.statusPage(), {
              headers: PAGE_HEADERS,
            });
          break;
      }
      return json(404, {
        error: {
          code: "ADMIN_NOT_FOUND",
          message: `no admin endpoint ${route}`,
          hint: "GET /status, POST /switch, /check, /drain, /pause, /resume, GET /metrics, /latency, /page",
        },
      });
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      const status = error.code === "ADMIN_BAD_BODY" ? 400 : 409;
      return json(status, {
        error: { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) },
      });
    }
  };
}

/** Serves the admin API on `socketPath` with mode 0600; refuses when another proxy answers there. */
export async function listenAdmin(socketPath: string, control: ProxyControl): Promise<Bun.Server<undefined>> {
  if (existsSync(socketPath)) {
    const running = await proxyStatus(socketPath).then(
      () => true,
      () => false,
    );
    if (running)
      throw new ProxyError(
        "PROXY_RUNNING",
        `another proxy already answers on ${socketPath}`,
        "stop it first, or check `axe-appliance proxy status`",
      );
  }
  return bindPrivateSocket(socketPath, () => Bun.serve({ unix: socketPath, fetch: adminHandler(control) }));
}

async function body<S extends z.ZodType>(request: Request, schema: S): Promise<z.infer<S>> {
  const text = await request.text();
  let value: unknown = {};
  try {
    if (text.trim() !== "") value = JSON.parse(text);
  } catch {
    throw new ProxyError("ADMIN_BAD_BODY", "the body is not JSON");
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ProxyError("ADMIN_BAD_BODY", `${issue.path.join(".") || "body"}: ${issue.message}`);
  }
  return parsed.data;
}

function json(status: number, value: unknown): Response {
  return Response.json(value, { status });
}
