/**
 * frame's HTTP surface on Elysia: /healthz, /proof, the protected resource metadata at both well-known
 * URLs, and /frame/mcp (guard, authenticate, then hand the web-standard Request to the MCP transport).
 * Every refused request is reported to the audit sink.
 */
import { randomUUID } from "node:crypto";
import { Elysia } from "elysia";
import type { Config } from "../../config/load.ts";
import type { Sql } from "../../db/connect.ts";
import { FORWARDED_HEADER, forwardStamp, isForwardStamp } from "../../lib/color-proof.ts";
import type { Color } from "../../lib/colors.ts";
import { AuthError } from "../../lib/errors.ts";
import { instanceId } from "../../lib/instance.ts";
import type { Logger } from "../../lib/log.ts";
import type { AuditSink } from "../audit-sink.ts";
import type { Authenticator } from "../auth/authenticate.ts";
import { IdentifiedRefusal } from "../auth/entra-claims.ts";
import { handleMcpRequest, type ToolCatalog } from "../mcp.ts";
import type { FrameMetrics } from "../metrics.ts";
import type { DataStore } from "../store/data-store.ts";
import { noAuthGuard, type RequestGuard, requestGuard } from "./guards.ts";
import { healthResponse, proofResponse } from "./health.ts";
import { authErrorResponse, jsonRpcError, PRM_PATH, protectedResourceMetadata } from "./responses.ts";

export interface FrameAppOptions {
  config: Config;
  color: Color;
  authenticator: Authenticator;
  /** The tenant's v2 issuer, named as the authorization server in the metadata. */
  issuer: string;
  catalog: ToolCatalog;
  /** For /healthz: the app pool. */
  sql: Sql;
  /** For /healthz: what this color proves itself with (src/lib/color-proof.ts). */
  colorKey: Buffer;
  /** What the tools work through (ToolContext.store). */
  store: DataStore;
  audit: AuditSink;
  logger: Logger;
  /** Counters for GET /metrics; the audit sink given here should already count into them. */
  metrics?: FrameMetrics;
  /** `serve --no-auth`: MCP answers direct loopback requests only (noAuthGuard). */
  noAuth?: boolean;
  /** The Host/Origin guard; serve passes its own so that a reload reaches it (default: from `config`). */
  guard?: RequestGuard;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function createFrameApp(options: FrameAppOptions) {
  const { config, audit, logger } = options;
  const instance = instanceId(config.paths.data);
  const guard = options.guard ?? requestGuard(config);
  const localOnly = options.noAuth ? noAuthGuard() : undefined;
  const maxBodyBytes = config.appliance.frame.max_body_bytes;
  const metadata = JSON.stringify(protectedResourceMetadata(config, options.issuer));
  const deps = { store: options.store, logger, audit, maxBodyBytes };
  // Another local account can call this color directly: its request id and source are believed only from our proxy.
  const stamp = forwardStamp(options.colorKey);

  const refuse = (
    status: number,
    reason: string,
    started: number,
    requestId: string,
    who = "anonymous",
    entity?: string,
    source?: string | null,
  ) =>
    audit
      .record({
        at: new Date(),
        who,
        reason,
        ...(source ? { source } : {}),
        customer: config.customer.name,
        ...(entity ? { entity } : {}),
        outcome: status === 403 && who !== "anonymous" ? "denied" : "refused",
        status,
        durationMs: Math.round(performance.now() - started),
        requestId,
      })
      .catch((error) => logger.error("audit sink failed", { error }));

  const serveMetadata = ({ request }: { request: Request }) => {
    const refused = guard.check(request);
    if (refused) return jsonRpcError(403, -32000, `Forbidden: ${refused}`);
    return new Response(metadata, {
      headers: {
        "content-type": "application/json",
        "access-control-allow-origin": "*",
        "cache-control": "max-age=300",
      },
    });
  };

  async function mcp(request: Request, peer: string | undefined): Promise<Response> {
    const started = performance.now();
    const proxied = isForwardStamp(stamp, request.headers.get(FORWARDED_HEADER));
    const incoming = proxied ? request.headers.get("x-request-id") : null;
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const source = proxied ? request.headers.get("x-forwarded-for") : peer;
    const refused = guard.check(request);
    if (refused) {
      void refuse(403, "host_or_origin", started, requestId, undefined, undefined, source);
      return jsonRpcError(403, -32000, `Forbidden: ${refused}`);
    }
    const notLocal = localOnly?.check(request);
    if (notLocal) {
      logger.warn("no-auth request refused", { requestId, reason: notLocal });
      void refuse(403, "no_auth_not_local", started, requestId);
      return jsonRpcError(403, -32000, `Forbidden: ${notLocal}`);
    }
    let principal;
    try {
      principal = await options.authenticator.authenticate(request);
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      void refuse(
        error.status,
        error.reason,
        started,
        requestId,
        error instanceof IdentifiedRefusal ? error.subject : "anonymous",
        undefined,
        source, // kept in the refusal tally
      );
      return authErrorResponse(error, config);
    }
    if (request.method !== "POST")
      return jsonRpcError(405, -32000, "Method not allowed: frame is stateless; send JSON-RPC messages with POST", {
        allow: "POST",
      });
    const length = Number(request.headers.get("content-length") ?? 0);
    if (length > maxBodyBytes)
      return jsonRpcError(413, -32000, `Request body too large: at most ${maxBodyBytes} bytes`);
    return handleMcpRequest(request, principal, options.catalog, deps, requestId);
  }

  return new Elysia({ serve: { idleTimeout: 0, maxRequestBodySize: maxBodyBytes + 1_048_576 } })
    .get("/healthz", ({ request }) => healthResponse(request, options.sql, options.color, options.colorKey, instance))
    .get("/proof", ({ request }) => proofResponse(request, options.color, options.colorKey))
    .get(PRM_PATH, serveMetadata)
    .get(`${PRM_PATH}/frame/mcp`, serveMetadata)
    .get("/metrics", async ({ request }) => {
      const refused = guard.check(request) ?? localOnly?.check(request);
      if (refused) return new Response(`Forbidden: ${refused}\n`, { status: 403 });
      return new Response((await options.metrics?.render()) ?? "", {
        headers: { "content-type": options.metrics?.contentType ?? "text/plain; version=0.0.4" },
      });
    })
    .all("/frame/mcp", async ({ request, server }) => {
      const started = performance.now();
      let response: Response;
      try {
        response = await mcp(request, server?.requestIP(request)?.address);
      } catch (error) {
        logger.error("mcp request failed", { error });
        response = jsonRpcError(
          500,
          -32603,
          "Internal error: the request failed inside frame; retry, and report it if it persists",
        );
      }
      options.metrics?.request(request.method, response.status, (performance.now() - started) / 1000);
      return response;
    });
}
