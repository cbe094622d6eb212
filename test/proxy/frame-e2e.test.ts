/**
 * The real thing end to end: two `axe-appliance serve` colors on one database, the proxy in
 * front. MCP through the proxy with a service token (a no-auth color refuses proxied requests),
 * releases read from frame's /healthz, a switch.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { issueServiceToken } from "../../src/frame/auth/service-tokens.ts";
import { proxyStatus, switchLiveColor } from "../../src/proxy/admin-client.ts";
import { mcpClient } from "../frame/harness.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { eventually, framePairConfigDir, type InProcessProxy, startProxy, stopAll } from "./harness.ts";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const frames: Bun.Subprocess[] = [];
let db: TestDatabase;
let proxy: InProcessProxy;
let token: string;

async function spawnFrame(color: string, port: number, dir: string): Promise<void> {
  const child = Bun.spawn(
    [process.execPath, MAIN, "serve", "--color", color, "--port", String(port), "--config", dir],
    {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, AXE_CONFIG_DIR: "", AXE_RELEASE: `1.0.0-${color}` },
    },
  );
  frames.push(child);
  const reader = child.stdout.getReader();
  let out = "";
  while (!out.includes("listening")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`frame ${color} exited: ${out} ${await new Response(child.stderr).text()}`);
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
}

beforeAll(async () => {
  db = await freshDatabase("proxy");
  const { dir, blue, green } = await framePairConfigDir(db.target);
  await Promise.all([spawnFrame("blue", blue, dir), spawnFrame("green", green, dir)]);
  proxy = await startProxy(dir);
  token = (
    await issueServiceToken(db.sql, loadConfig({ dir }).paths.secrets, {
      customer: "axe",
      entity: "axe",
      role: "admin",
      name: "e2e",
      expiresInMs: 600_000,
    })
  ).token;
}, 60_000);

afterAll(async () => {
  await stopAll();
  for (const child of frames) child.kill("SIGTERM");
  await Promise.all(frames.map((c) => c.exited));
  await db?.drop();
}, 60_000);

test("MCP goes through the proxy to the live color, and follows a switch", async () => {
  // a color that just started may answer 503 while its database pool warms up
  await eventually(async () => {
    const s = await proxyStatus(proxy.socket);
    return s.colors.blue.healthy && s.colors.green.healthy;
  }, "both colors healthy");
  const status = await proxyStatus(proxy.socket);
  expect(status.colors.blue).toMatchObject({ healthy: true, release: "1.0.0-blue" });
  expect(status.colors.green).toMatchObject({ healthy: true, release: "1.0.0-green" });

  const before = await mcpClient(`${proxy.url}/frame/mcp`, token);
  const whoami = await before.callTool({ name: "whoami", arguments: {} });
  expect(whoami.structuredContent).toMatchObject({ customer: "axe", role: "admin" });
  await before.close();

  await switchLiveColor(proxy.socket, "green");
  const after = await mcpClient(`${proxy.url}/frame/mcp`, token);
  expect((await after.listTools()).tools.map((t) => t.name)).toContain("whoami");
  await after.close();
  const lines = proxy.accessLines().filter((l) => l.path === "/frame/mcp");
  expect(lines.some((l) => l.color === "blue")).toBe(true);
  expect(lines.at(-1)!.color).toBe("green");
});

test("the protected resource metadata is served by frame through the proxy", async () => {
  const response = await fetch(`${proxy.url}/.well-known/oauth-protected-resource/frame/mcp`);
  expect(response.status).toBe(200);
  expect(((await response.json()) as { resource: string }).resource).toMatch(/\/frame\/mcp$/);
});
