/**
 * A running frame with the Postgres audit sink (the default), and service tokens for any entity
 * and role, so tool tests go through real HTTP, real auth, the real MCP SDK client and real rows.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Role } from "../../../src/config/customers.ts";
import { type Config, loadConfig } from "../../../src/config/load.ts";
import { issueServiceToken } from "../../../src/frame/auth/service-tokens.ts";
import { type RunningFrame, startFrame } from "../../../src/frame/serve.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { makeConfigDir } from "../../helpers/config.ts";
import { freePort } from "../../helpers/ports.ts";
import { freshDatabase, type TestDatabase } from "../../helpers/postgres.ts";
import { mcpClient } from "../harness.ts";

export interface DataFrame {
  frame: RunningFrame;
  config: Config;
  db: TestDatabase;
  mcpUrl: string;
  /** An MCP client holding a fresh service token for `entity` with `role`. */
  client(entity: string, role: Role): Promise<Client>;
  /** A fresh service token for `entity` with `role`, for raw HTTP calls. */
  token(entity: string, role: Role): Promise<string>;
  close(): Promise<void>;
}

/** `frame`: extra keys for appliance.yaml's frame section (entra_authority for the stand-in, ...). */
export async function startDataFrame(frameOptions: Record<string, unknown> = {}): Promise<DataFrame> {
  const db = await freshDatabase("tools");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    dir: makeConfigDir({
      database: db.target,
      appliance: { frame: { public_url: base, ports: { blue: port, green: port + 1 }, ...frameOptions } },
    }),
  });
  const frame = await startFrame({ config, color: "blue", logger: createLogger({ level: "error" }) });
  const clients: Client[] = [];
  const token = async (entity: string, role: Role) =>
    (
      await issueServiceToken(db.sql, config.paths.secrets, {
        customer: "axe",
        entity,
        role,
        name: `${entity}-${role}`,
        expiresInMs: 3_600_000,
      })
    ).token;
  return {
    frame,
    config,
    db,
    mcpUrl: `${base}/frame/mcp`,
    token,
    async client(entity, role) {
      const client = await mcpClient(`${base}/frame/mcp`, await token(entity, role));
      clients.push(client);
      return client;
    },
    async close() {
      for (const c of clients) await c.close().catch(() => {});
      await frame.stop();
      await db.drop();
    },
  };
}

export interface CallOutcome {
  isError: boolean;
  text: string;
  data: Record<string, any>;
}

/** Calls a tool and returns its error flag, text and structured content. */
export async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<CallOutcome> {
  const result = await client.callTool({ name, arguments: args });
  const content = result.content as Array<{ type: string; text?: string }>;
  return {
    isError: Boolean(result.isError),
    text: content.map((c) => c.text ?? "").join("\n"),
    data: (result.structuredContent ?? {}) as Record<string, any>,
  };
}

export const PEOPLE = {
  name: "people",
  description: "customers of the shop",
  fields: {
    name: { type: "string", required: true, searchable: true },
    email: { type: "string", pii: true },
    age: { type: "integer" },
    notes: { type: "string", searchable: true, max_length: 200 },
  },
};
