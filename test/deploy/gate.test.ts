/**
 * The deploy gate against stand-ins for a color (not our frame: each one is broken in one way a
 * release could be), built from the MCP SDK's own server; the real frame passes it in receive.test.ts.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { mcpCheck, waitForHealth } from "../../src/deploy/gate.ts";
import { CHALLENGE_HEADER, colorProof, loadColorKey, PROOF_HEADER } from "../../src/lib/color-proof.ts";
import { DeployError } from "../../src/lib/errors.ts";
import { tempDir } from "../helpers/tmp.ts";
import { WAIT_MS } from "../helpers/wait.ts";

const TOKEN = "axe_st_gate";
const servers: Array<ReturnType<typeof Bun.serve>> = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.stop(true);
});

/** A stateless MCP server whose tools/list answers `tools` (whatever shape it is). */
function color(tools: unknown, options: { json?: boolean } = {}): string {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      if (request.headers.get("authorization") !== `Bearer ${TOKEN}`) return new Response(null, { status: 401 });
      const mcp = new Server({ name: "stand-in", version: "1" }, { capabilities: { tools: {} } });
      mcp.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }) as never);
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: options.json ?? true,
      });
      await mcp.connect(transport);
      return transport.handleRequest(request);
    },
  });
  servers.push(server);
  return `http://127.0.0.1:${server.port}/frame/mcp`;
}

const A_TOOL = { name: "whoami", inputSchema: { type: "object" } };

async function failure(check: Promise<unknown>): Promise<DeployError> {
  const error = await check.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DeployError);
  return error as DeployError;
}

describe("deploy gate: MCP", () => {
  test("initialize and tools/list answered, as JSON or as an SSE stream", async () => {
    expect(await mcpCheck(color([A_TOOL]), TOKEN)).toBe("initialize (stand-in) and tools/list (1 tools) answered");
    expect(await mcpCheck(color([A_TOOL, { ...A_TOOL, name: "b" }], { json: false }), TOKEN)).toBe(
      "initialize (stand-in) and tools/list (2 tools) answered",
    );
  });

  test("a color that refuses the gate's token fails at initialize", async () => {
    const error = await failure(mcpCheck(color([A_TOOL]), "axe_st_wrong"));
    expect(error.code).toBe("MCP_INITIALIZE");
  });

  test("a color that lists no tools, or not a tool list, fails at tools/list", async () => {
    expect((await failure(mcpCheck(color([]), TOKEN))).message).toBe("tools/list answered with no tools");
    const malformed = await failure(mcpCheck(color("not a list"), TOKEN));
    expect(malformed.code).toBe("MCP_TOOLS");
    expect(malformed.message).toStartWith("tools/list failed: ");
  });

  test("nothing listening fails at initialize, within the gate's time", async () => {
    const error = await failure(mcpCheck("http://127.0.0.1:1/frame/mcp", TOKEN));
    expect(error.code).toBe("MCP_INITIALIZE");
  });
});

describe("deploy gate: /healthz", () => {
  function healthz(body: unknown, status = 200): string {
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json(body, { status }) });
    servers.push(server);
    return `http://127.0.0.1:${server.port}`;
  }
  const good = {
    status: "ok",
    service: "axe-frame",
    color: "green",
    release: "2.0.0",
    database: { reachable: true, migration: 3 },
  };

  test("passes on the expected color and release", async () => {
    const url = healthz(good);
    expect(await waitForHealth({ url, color: "green", release: "2.0.0", timeoutMs: WAIT_MS })).toBe(
      "green answers /healthz on 2.0.0 (migration 3)",
    );
  });

  test("an answer that is not frame's, or the wrong release, times out naming what it saw", async () => {
    const stranger = await failure(
      waitForHealth({ url: healthz({ hello: "world" }), color: "green", release: "2.0.0", timeoutMs: 300 }),
    );
    expect(stranger.code).toBe("HEALTH_TIMEOUT");
    expect(stranger.message).toContain('not a frame /healthz answer: {"hello":"world"}');
    const older = await failure(
      waitForHealth({ url: healthz({ ...good, release: "1.9.0" }), color: "green", release: "2.0.0", timeoutMs: 300 }),
    );
    expect(older.message).toContain('"release":"1.9.0"');
  });

  test("once the release proves its color, a perfect answer without the proof never passes (no token follows)", async () => {
    const key = loadColorKey(tempDir("axe-secrets"));
    const impostor = await failure(
      waitForHealth({ url: healthz(good), color: "green", release: "2.0.0", timeoutMs: 300, colorKey: key }),
    );
    expect(impostor.code).toBe("HEALTH_TIMEOUT");
    expect(impostor.message).toContain("does not prove it is this install's green");
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) => {
        const proof = colorProof(key, "green", request.headers.get(CHALLENGE_HEADER));
        return Response.json(good, { headers: proof ? { [PROOF_HEADER]: proof } : {} });
      },
    });
    servers.push(server);
    const url = `http://127.0.0.1:${server.port}`;
    expect(await waitForHealth({ url, color: "green", release: "2.0.0", timeoutMs: WAIT_MS, colorKey: key })).toBe(
      "green answers /healthz on 2.0.0 (migration 3)",
    );
  });
});
