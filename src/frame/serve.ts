/**
 * Starts frame: opens the database (embedded default when no database.url), migrates, builds the
 * verifiers, listens on frame.bind, and stops gracefully (stop accepting, finish in-flight).
 *
 * @example
 * const frame = await startFrame({ config, color: "blue" });
 * process.on("SIGTERM", () => frame.stop().then(() => process.exit(0)));
 */

import { type Config, loadConfig } from "../config/load.ts";
import { connect, openDatabase, openEmbedded } from "../db/connect.ts";
import { EmbeddedWatch } from "../db/embedded-watch.ts";
import { migrate } from "../db/migrate.ts";
import { urlHost } from "../lib/address.ts";
import { loadColorKey } from "../lib/color-proof.ts";
import type { Color } from "../lib/colors.ts";
import { ConfigError } from "../lib/errors.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import type { AuditSink } from "./audit-sink.ts";
import { bearerAuthenticator, devAuthenticator } from "./auth/authenticate.ts";
import { EntraVerifier } from "./auth/entra.ts";
import { loadTokenKey, ServiceTokenVerifier } from "./auth/service-tokens.ts";
import { createFrameApp } from "./http/app.ts";
import { requestGuard } from "./http/guards.ts";
import { ToolCatalog } from "./mcp.ts";
import { startMemoryCeiling } from "./memory.ts";
import { countingAuditSink, FrameMetrics } from "./metrics.ts";
import { anchorPlace } from "./store/audit-anchor-format.ts";
import { type Anchoring, startAnchoring } from "./store/audit-anchoring.ts";
import { type FrameData, openFrameData } from "./store/open-data.ts";
import { TOOLS } from "./tools/index.ts";

export interface ServeOptions {
  config: Config;
  color: Color;
  /** Default: appliance.yaml frame.ports[color]. 0 picks a free port. */
  port?: number;
  /** Development only: every request is the admin of the customer's first entity. Loopback only. */
  noAuth?: boolean;
  /** Where audit events go; default JSON log lines. */
  audit?: AuditSink;
  logger?: Logger;
  /** Least time between JWKS refetches for unknown kids (tests shorten it). */
  jwksCooldownMs?: number;
  /** How often a color on the embedded default looks whether its cluster still runs (default 5 s). */
  embeddedWatchMs?: number;
}

export interface RunningFrame {
  port: number;
  /** http://{bind}:{port} */
  url: string;
  /** The service-token verifier (absent with noAuth); its `stats` count cache hits. */
  serviceTokens?: ServiceTokenVerifier;
  /**
   * Reads customers.yaml (and appliance.yaml) again (SIGHUP): validated first; new entities are
   * created and tokens for them accepted from then on. A file that does not load, or a change that
   * needs a restart (tenant, client id, Application ID URI, scope, v1 tokens, customer, public URL),
   * keeps the running configuration and says why. Never throws.
   */
  reload(): Promise<ReloadOutcome>;
  /** Stops accepting, lets in-flight requests finish, closes the pool (and the embedded cluster if started here). */
  stop(): Promise<void>;
}

export type ReloadOutcome =
  | { applied: true; entities: string[]; created: string[] }
  | { applied: false; reason: string };

/** Why `next` cannot replace `current` without a restart, or undefined. */
function needsRestart(current: Config, next: Config): string | undefined {
  if (next.customer.name !== current.customer.name) return `the machine's customer changed to ${next.customer.name}`;
  if (next.mcpUrl !== current.mcpUrl) return `the MCP URL changed to ${next.mcpUrl}`;
  const keys = ["tenant_id", "client_id", "app_id_uri", "scope", "accept_v1_tokens"] as const;
  const changed = keys.find((k) => next.customer.entra[k] !== current.customer.entra[k]);
  return changed ? `entra.${changed} changed (it shapes the accepted issuers, audiences and keys)` : undefined;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export async function startFrame(options: ServeOptions): Promise<RunningFrame> {
  const { config, color } = options;
  const frame = config.appliance.frame;
  const logger = options.logger ?? createLogger({ base: { service: "axe-frame", color } });
  if (options.noAuth && !LOOPBACK.test(frame.bind))
    throw new ConfigError(
      "NO_AUTH_NOT_LOOPBACK",
      `--no-auth is refused: frame.bind is ${frame.bind}, not a loopback address`,
      "set frame.bind to 127.0.0.1 for development, or drop --no-auth",
    );
  const port = options.port ?? frame.ports[color];
  const db = await openDatabase(config);
  const watch = db.embedded
    ? new EmbeddedWatch(db.embedded, () => openEmbedded(config), logger, options.embeddedWatchMs ?? 5_000)
    : undefined;
  const stopEmbedded = async () => {
    const cluster = (await watch?.stop()) ?? db.embedded;
    if ((await cluster?.stop()) === "in use")
      logger.info("the embedded Postgres this color started stays up: another process uses it");
  };
  const sql = connect(db.target, { max: 10, catalogOnly: true }); // the owner's pool
  let data: FrameData | undefined;
  let anchoring: Anchoring | undefined;
  let serviceTokens: ServiceTokenVerifier | undefined;
  try {
    await migrate(sql);
    data = await openFrameData(config, sql, db.target); // tools run as the app login role, audit goes to Postgres
    anchoring = await startAnchoring(sql, anchorPlace(config), {
      everyMs: frame.audit_anchor_minutes * 60_000,
      logger,
    });
    const entra = new EntraVerifier(config.customer, config.fleet, {
      authority: frame.entra_authority,
      v1IssuerBase: frame.entra_v1_issuer_base,
      ...(options.jwksCooldownMs !== undefined ? { jwksCooldownMs: options.jwksCooldownMs } : {}),
    });
    if (!options.noAuth) {
      serviceTokens = new ServiceTokenVerifier(
        sql,
        loadTokenKey(config.paths.secrets),
        config.customer.name,
        config.customer.entities.map((e) => e.name),
        { listenPool: () => connect(db.target, { max: 1, catalogOnly: true }) },
      );
      // Revocations arrive by NOTIFY; without the subscription every call asks the database (no cache).
      await serviceTokens
        .listen()
        .catch((error: unknown) =>
          logger.warn(
            "service-token revocations not subscribed; tokens are checked against the database on every call",
            { error: String(error) },
          ),
        );
    }
    const guard = requestGuard(config);
    let current = config;
    const reload = async (): Promise<ReloadOutcome> => {
      let next: Config;
      try {
        next = loadConfig({ dir: config.dir });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        logger.error("configuration not reloaded: the files do not load; the running configuration stays", { reason });
        return { applied: false, reason };
      }
      const restart = needsRestart(current, next);
      if (restart) {
        logger.warn("configuration not reloaded: restart serve to apply this change", { reason: restart });
        return { applied: false, reason: `${restart}; restart serve to apply it` };
      }
      let created: string[];
      try {
        created = await data!.ensureEntities(next);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        logger.error("configuration not reloaded: an entity could not be created", { reason });
        return { applied: false, reason };
      }
      entra.useCustomer(next.customer, next.fleet);
      guard.use(next); // frame.allowed_hosts and allowed_origins: a withdrawn one is refused from now on
      const entities = next.customer.entities.map((e) => e.name);
      serviceTokens?.useEntities(entities);
      current = next;
      logger.info("configuration reloaded", { entities, created });
      return { applied: true, entities, created };
    };
    const authenticator = serviceTokens ? bearerAuthenticator(entra, serviceTokens) : devAuthenticator(config.customer);
    if (!options.noAuth) void entra.warm();
    const metrics = new FrameMetrics(color, { tools: TOOLS.map((tool) => tool.name) });
    const app = createFrameApp({
      config,
      color,
      authenticator,
      issuer: entra.issuerV2,
      catalog: new ToolCatalog(TOOLS),
      sql: data.sql,
      colorKey: loadColorKey(config.paths.secrets),
      store: data.store,
      audit: countingAuditSink(options.audit ?? data.audit, metrics),
      logger,
      metrics,
      noAuth: options.noAuth ?? false,
      guard,
    });
    listen(app, frame.bind, port, color);
    const stopMemoryCeiling = startMemoryCeiling();
    const server = app.server!;
    const url = `http://${urlHost(frame.bind)}:${server.port}`;
    logger.info("frame listening", { url, mcpUrl: config.mcpUrl, auth: options.noAuth ? "none" : "entra+service" });
    return {
      port: server.port!,
      url,
      serviceTokens,
      reload,
      async stop() {
        await watch?.stop(); // first: at a machine's shutdown Postgres may be stopping too, and must not be started again
        stopMemoryCeiling();
        await server.stop();
        serviceTokens?.close();
        // In-flight requests are done by now; a connection stuck on a dead database must not hold the exit.
        await data?.close();
        await anchoring?.stop(); // after the last audit rows are written: the anchor covers them
        await sql.end({ timeout: 2 });
        await stopEmbedded();
      },
    };
  } catch (error) {
    serviceTokens?.close();
    await data?.close();
    await anchoring?.stop();
    await sql.end({ timeout: 5 });
    await stopEmbedded();
    throw error;
  }
}

/** Starts listening, or says which address is taken (Bun's own error is a question with a stack). */
function listen(app: ReturnType<typeof createFrameApp>, hostname: string, port: number, color: Color): void {
  try {
    app.listen({ hostname, port });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const inUse = code === "EADDRINUSE" || /in use/i.test((error as Error).message);
    throw new ConfigError(
      "FRAME_LISTEN_FAILED",
      `cannot listen on ${urlHost(hostname)}:${port}: ${inUse ? "the address is in use" : (error as Error).message}`,
      `is another frame ${color} running? Check with \`axe-appliance doctor\`, or set frame.ports.${color} in appliance.yaml`,
    );
  }
}
