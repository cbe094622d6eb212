import { afterEach, describe, expect, test } from "bun:test";
import { connect as connectTcp } from "node:net";
import { loadConfig } from "../../src/config/load.ts";
import { connect } from "../../src/db/connect.ts";
import { MIGRATIONS } from "../../src/db/migrations/index.ts";
import { startFrame } from "../../src/frame/serve.ts";
import { ConfigError } from "../../src/lib/errors.ts";
import { createLogger } from "../../src/lib/log.ts";
import { MAIN } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { freePort } from "../helpers/ports.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { hasReadConnection } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";
import { json, mcpClient, rpc, startTestFrame, type TestFrame } from "./harness.ts";

let running: TestFrame | undefined;
let db: TestDatabase | undefined;
afterEach(async () => {
  await running?.close();
  await db?.drop();
  running = db = undefined;
});

/** Starts `axe-appliance serve` as a child process and waits for its "listening" line. */
async function spawnServe(args: string[]) {
  const child = Bun.spawn([process.execPath, MAIN, "serve", ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, AXE_CONFIG_DIR: "", AXE_RELEASE: "9.9.9-test" },
  });
  const reader = child.stdout.getReader();
  let stdout = "";
  while (!stdout.includes("listening")) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { child, stdout, stderr: () => new Response(child.stderr).text() };
}

describe("serve", () => {
  test("the CLI serves healthz and whoami with --no-auth, warns loudly, and exits 0 on SIGTERM", async () => {
    db = await freshDatabase("serve");
    const port = await freePort();
    const dir = makeConfigDir({
      database: db.target,
      appliance: { frame: { public_url: `http://127.0.0.1:${port}` } },
    });
    const { child, stdout, stderr } = await spawnServe([
      "--color",
      "green",
      "--port",
      String(port),
      "--config",
      dir,
      "--no-auth",
    ]);
    expect(stdout).toContain(`frame green listening on http://127.0.0.1:${port}`);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await json(health)).toEqual({
      status: "ok",
      service: "axe-frame",
      color: "green",
      release: "9.9.9-test",
      instance: expect.stringMatching(/^[0-9a-f]{16}$/),
      database: { reachable: true, migration: expect.any(Number) },
    });
    const client = await mcpClient(`http://127.0.0.1:${port}/frame/mcp`);
    const result = await client.callTool({ name: "whoami", arguments: {} });
    expect(result.structuredContent).toMatchObject({
      principal: "dev",
      kind: "dev",
      customer: "axe",
      entity: "axe",
      role: "admin",
    });
    await client.close();
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
    const log = await stderr();
    expect(log).toContain("WARNING");
    expect(log).toContain("--no-auth");
    expect(log).toContain("ADMIN of entity 'axe'");
  });

  test("SIGTERM: new connections are refused, a request already in flight is answered, exit 0", async () => {
    db = await freshDatabase("serve");
    const port = await freePort();
    const dir = makeConfigDir({
      database: db.target,
      appliance: { frame: { public_url: `http://127.0.0.1:${port}` } },
    });
    const { child } = await spawnServe(["--color", "blue", "--port", String(port), "--config", dir, "--no-auth"]);
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 7,
      method: "tools/call",
      params: { name: "whoami", arguments: {} },
    });
    // The request's head and the first bytes of its body, over a raw connection whose port we know.
    const socket = connectTcp(port, "127.0.0.1");
    let answer = "";
    socket.on("data", (chunk) => (answer += chunk.toString("latin1")));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    socket.on("error", () => undefined); // a reset shows below as an answer that is not a 200
    const head = [
      "POST /frame/mcp HTTP/1.1",
      `Host: 127.0.0.1:${port}`,
      "Content-Type: application/json",
      "Accept: application/json, text/event-stream",
      `Content-Length: ${Buffer.byteLength(body)}`,
      "Connection: close",
    ].join("\r\n");
    await new Promise<void>((resolve) => socket.write(`${head}\r\n\r\n${body.slice(0, 10)}`, () => resolve()));
    // SIGTERM once serve has read that head: stopping closes a connection it has read no request from yet
    await waitFor("serve to read the request's head", () => hasReadConnection(child.pid, port, socket.localPort!));
    child.kill("SIGTERM");
    await waitFor(
      "serve to refuse new connections after SIGTERM",
      () =>
        fetch(`http://127.0.0.1:${port}/healthz`).then(
          () => false,
          () => true,
        ),
      { intervalMs: 50 },
    );
    socket.write(body.slice(10)); // the rest of the body arrives only after SIGTERM
    await closed;
    expect(answer).toStartWith("HTTP/1.1 200 ");
    expect(answer).toContain('\\"principal\\":\\"dev\\"');
    expect(await child.exited).toBe(0);
  });

  test("--no-auth is refused when bound beyond loopback", async () => {
    db = await freshDatabase("serve");
    const dir = makeConfigDir({ database: db.target, appliance: { frame: { bind: "0.0.0.0" } } });
    await expect(startFrame({ config: loadConfig({ dir }), color: "blue", port: 0, noAuth: true })).rejects.toThrow(
      ConfigError,
    );
    await expect(startFrame({ config: loadConfig({ dir }), color: "blue", port: 0, noAuth: true })).rejects.toThrow(
      /not a loopback address/,
    );
  });

  test("the migration version is reported, and an unreachable database makes healthz 503 degraded", async () => {
    running = await startTestFrame({ noAuth: true });
    const ok = await json(await fetch(`${running.base}/healthz`));
    expect(ok.database).toEqual({ reachable: true, migration: MIGRATIONS.at(-1)!.version });
    const admin = connect(running.db.admin, { max: 1 });
    const name = admin(running.db.target.database);
    try {
      await admin`alter database ${name} with allow_connections false`;
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${running.db.target.database}`;
      const degraded = await fetch(`${running.base}/healthz`);
      expect(degraded.status).toBe(503);
      expect(await json(degraded)).toMatchObject({
        status: "degraded",
        service: "axe-frame",
        color: "blue",
        database: { reachable: false },
      });
    } finally {
      await admin`alter database ${name} with allow_connections true`;
      await admin.end();
    }
  });

  test("stateless: no Mcp-Session-Id; GET and DELETE answer 405; bad JSON gets a JSON-RPC error", async () => {
    running = await startTestFrame({ noAuth: true });
    const init = await rpc(running.mcpUrl, {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    });
    expect(init.status).toBe(200);
    expect(init.headers.get("mcp-session-id")).toBeNull();
    expect(await init.text()).toContain('"serverInfo"');
    for (const method of ["GET", "DELETE"]) {
      const response = await fetch(running.mcpUrl, { method, headers: { accept: "text/event-stream" } });
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBe("POST");
    }
    const garbage = await rpc(running.mcpUrl, "{not json");
    expect(garbage.status).toBe(400);
    const body = await json(garbage);
    expect(body).toMatchObject({ jsonrpc: "2.0", error: { code: -32700 }, id: null });
    expect(JSON.stringify(body)).not.toMatch(/\bat .*:\d+:\d+/);
    const notRpc = await rpc(running.mcpUrl, { hello: "world" });
    expect(notRpc.status).toBe(400);
    expect((await json(notRpc)).error.code).toBeNumber();
  });

  test("a body over frame.max_body_bytes gets 413 before anything is parsed", async () => {
    running = await startTestFrame({ noAuth: true, frame: { max_body_bytes: 2048 } });
    const big = await rpc(running.mcpUrl, { jsonrpc: "2.0", id: 1, method: "ping", params: { pad: "x".repeat(4096) } });
    expect(big.status).toBe(413);
    expect((await json(big)).error.message).toContain("2048");
    const small = await rpc(running.mcpUrl, { jsonrpc: "2.0", id: 1, method: "ping" });
    expect(small.status).toBe(200);
    // Chunked, so no Content-Length to refuse it by: the body is read, then refused.
    const streamed = await fetch(running.mcpUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
      },
      body: new Blob([
        JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping", params: { pad: "é".repeat(1500) } }),
      ]).stream(),
    });
    expect(streamed.status).toBe(413);
    // The header checks still come first, whatever the body is.
    expect((await rpc(running.mcpUrl, "{not json", { accept: "application/json" })).status).toBe(406);
    expect((await rpc(running.mcpUrl, "{not json", { "content-type": "text/plain" })).status).toBe(415);
  });

  test("Host and Origin are checked (DNS-rebinding protection) on /frame/mcp, the metadata and /metrics", async () => {
    // With authentication on: a request the guard lets through gets the 401 challenge, one it refuses 403.
    running = await startTestFrame({ frame: { allowed_hosts: ["frame.internal"] } });
    const ping = { jsonrpc: "2.0", id: 1, method: "ping" };
    expect((await rpc(running.mcpUrl, ping, { host: "evil.example" })).status).toBe(403);
    expect((await rpc(running.mcpUrl, ping, { host: "frame.internal:8080" })).status).toBe(401);
    expect((await rpc(running.mcpUrl, ping, { host: "localhost" })).status).toBe(401);
    expect((await rpc(running.mcpUrl, ping, { host: "[::1]:3710" })).status).toBe(401);
    expect((await rpc(running.mcpUrl, ping, { host: "127.0.0.1.evil.example" })).status).toBe(403);
    expect((await rpc(running.mcpUrl, ping, { origin: "https://evil.example" })).status).toBe(403);
    expect((await rpc(running.mcpUrl, ping, { origin: "https://claude.ai" })).status).toBe(401);
    expect(
      (await fetch(`${running.base}/.well-known/oauth-protected-resource`, { headers: { host: "evil.example" } }))
        .status,
    ).toBe(403);
    const metrics = (headers: Record<string, string>) => fetch(`${running!.base}/metrics`, { headers });
    expect((await metrics({ host: "evil.example" })).status).toBe(403);
    expect((await metrics({ origin: "https://evil.example" })).status).toBe(403);
    const ok = await metrics({});
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("axe_frame_requests_total");
    expect(running.audit.events.some((e) => e.reason === "host_or_origin" && e.outcome === "refused")).toBe(true);
  });

  test("functions planted in schema public by another role never run as the database owner (serve's start, the CLI)", async () => {
    db = await freshDatabase("planted");
    // PostgreSQL <= 14 lets every role create in public (on a shared server: another customer's role
    // too). More specific than pg_catalog's, these would be chosen over format(text, VARIADIC "any") and
    // pg_advisory_xact_lock(bigint) in the owner's own session, and run with the owner's rights.
    const intruder = `intruder_${db.target.database}`;
    await db.sql`create role ${db.sql(intruder)} login password 'intruder'`;
    try {
      await db.sql`grant create on schema public to public`;
      const as = connect({ ...db.target, user: intruder, password: "intruder" }, { max: 1 });
      await as`create table public.planted (who text, what text)`;
      await as`grant insert on public.planted to public`;
      await as`create function public.format(text, text, text) returns text language sql
               as $$ insert into public.planted values (current_user, 'format') returning 'select 1' $$`;
      await as`create function public.pg_advisory_xact_lock(integer) returns void language sql
               as $$ insert into public.planted values (current_user, 'lock') $$`;
      await as`grant execute on all functions in schema public to public`;
      await as.end();
      const port = await freePort();
      const dir = makeConfigDir({
        database: db.target,
        appliance: { frame: { public_url: `http://127.0.0.1:${port}` } },
      });
      const frame = await startFrame({
        config: loadConfig({ dir }),
        color: "blue",
        port,
        logger: createLogger({ level: "error" }),
      });
      await frame.stop();
      const rotate = Bun.spawn([process.execPath, MAIN, "keys", "rotate", "--config", dir], {
        stdout: "ignore",
        stderr: "pipe",
        env: { ...process.env, AXE_CONFIG_DIR: "" },
      });
      expect(await rotate.exited).toBe(0);
      expect([...(await db.sql`select who, what from public.planted`)]).toEqual([]);
    } finally {
      await db.sql`drop owned by ${db.sql(intruder)}`;
      await db.sql`drop role ${db.sql(intruder)}`;
    }
  }, 60_000);
});
