#!/usr/bin/env bun
/**
 * The peer for bench/frame-whoami.ts: a bare MCP SDK server, stateless (a new McpServer and
 * web-standard transport per request, as the SDK documents, answering JSON as frame does), one
 * `echo` tool, no auth, on Bun.serve.
 *   bun bench/frame-bare-echo.ts PORT
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { z } from "zod";

const port = Number(process.argv[2] ?? 0);
const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  idleTimeout: 0,
  async fetch(request) {
    const mcp = new McpServer({ name: "bare-echo", version: "1.0.0" });
    mcp.registerTool(
      "echo",
      { description: "Echoes its input.", inputSchema: { text: z.string() }, outputSchema: { text: z.string() } },
      async ({ text }) => ({
        content: [{ type: "text", text }],
        structuredContent: { text },
      }),
    );
    // JSON answers, as frame gives (src/frame/mcp.ts): the ratio then measures frame, not the response mode.
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    await mcp.connect(transport);
    return transport.handleRequest(request);
  },
});
console.log(`listening ${server.port}`);
process.on("SIGTERM", () => server.stop().then(() => process.exit(0)));
