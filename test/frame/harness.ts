/** A running frame for tests: a fresh database, a config dir whose public URL is the server itself. */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type Config, loadConfig } from "../../src/config/load.ts";
import { type AuditSink, memoryAuditSink } from "../../src/frame/audit-sink.ts";
import { type RunningFrame, startFrame } from "../../src/frame/serve.ts";
import { FORWARDED_HEADER, forwardStamp, readColorKey } from "../../src/lib/color-proof.ts";
import { createLogger, type Logger } from "../../src/lib/log.ts";
import { makeConfigDir, TEST_CUSTOMERS } from "../helpers/config.ts";
import { freePort } from "../helpers/ports.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";

export interface TestFrame {
  frame: RunningFrame;
  config: Config;
  configDir: string;
  db: TestDatabase;
  mcpUrl: string;
  base: string;
  audit: ReturnType<typeof memoryAuditSink>;
  close(): Promise<void>;
}

export interface TestFrameOptions {
  noAuth?: boolean;
  /** Extra keys for appliance.yaml's frame section (entra_authority for the stand-in, ...). */
  frame?: Record<string, unknown>;
  customers?: unknown;
  jwksCooldownMs?: number;
  audit?: AuditSink;
  /** Default: errors only, on stderr. */
  logger?: Logger;
}

export async function startTestFrame(options: TestFrameOptions = {}): Promise<TestFrame> {
  const db = await freshDatabase("frame");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const configDir = makeConfigDir({
    database: db.target,
    customers: options.customers ?? TEST_CUSTOMERS,
    appliance: { frame: { public_url: base, ports: { blue: port, green: port + 1 }, ...options.frame } },
  });
  const config = loadConfig({ dir: configDir });
  const audit = memoryAuditSink();
  const frame = await startFrame({
    config,
    color: "blue",
    noAuth: options.noAuth ?? false,
    audit: options.audit ?? audit,
    logger: options.logger ?? createLogger({ level: "error" }),
    jwksCooldownMs: options.jwksCooldownMs ?? 0,
  });
  return {
    frame,
    config,
    configDir,
    db,
    base,
    audit,
    mcpUrl: `${base}/frame/mcp`,
    async close() {
      await frame.stop();
      await db.drop();
    },
  };
}

/** An SDK client connected with a bearer token (or none). */
export async function mcpClient(mcpUrl: string, token?: string): Promise<Client> {
  const client = new Client({ name: "frame-test", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(
    new URL(mcpUrl),
    token ? { requestInit: { headers: { authorization: `Bearer ${token}` } } } : {},
  );
  await client.connect(transport);
  return client;
}

/** A raw JSON-RPC POST, as a client would send it. */
export function rpc(mcpUrl: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(mcpUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-11-25",
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** A response's JSON body, typed loosely for assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const json = (response: Response): Promise<any> => response.json();

/**
 * The stamp our proxy puts on what it forwards (decision 75): with it, frame keeps a request's own
 * X-Request-Id, as it does the proxy's. A test that finds its audit rows by its own id sends it.
 */
export function proxyStamp(config: Config): Record<string, string> {
  return { [FORWARDED_HEADER]: forwardStamp(readColorKey(config.paths.secrets)!) };
}
