/**
 * `serve --no-auth` makes every caller the admin of an entity, so it must only ever answer a
 * developer on this machine: never a request that came through the proxy (issue 12 item 3).
 * The proxy here is the real `axe-appliance proxy run` process, used as a black box: its
 * /healthz says it is up, and whatever it forwards carries its own headers.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { loadConfig } from "../../src/config/load.ts";
import { memoryAuditSink } from "../../src/frame/audit-sink.ts";
import { type RunningFrame, startFrame } from "../../src/frame/serve.ts";
import { createLogger } from "../../src/lib/log.ts";
import { productionFootprint } from "../../src/services/footprint.ts";
import { MAIN } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { freePort } from "../helpers/ports.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";
import { json, rpc } from "./harness.ts";

let frame: RunningFrame | undefined;
let proxy: Subprocess | undefined;
let db: TestDatabase | undefined;
afterEach(async () => {
  proxy?.kill("SIGTERM");
  await proxy?.exited;
  await frame?.stop();
  await db?.drop();
  frame = proxy = db = undefined;
});

const WHOAMI = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } };

/** A config dir for a no-auth frame on `framePort` and a proxy on `proxyPort` in front of it (blue). */
async function setUp() {
  db = await freshDatabase("noauth");
  const [framePort, proxyPort] = [await freePort(), await freePort()];
  const dir = makeConfigDir({
    database: db.target,
    appliance: {
      // The public host passes the ordinary Host guard; no-auth must refuse it all the same.
      frame: { public_url: "https://axe.axelabs.ai", ports: { blue: framePort, green: framePort + 1 } },
      proxy: {
        listen: `127.0.0.1:${proxyPort}`,
        upstreams: { blue: `http://127.0.0.1:${framePort}`, green: `http://127.0.0.1:${framePort + 1}` },
        health: { interval_ms: 100, timeout_ms: 500, healthy_threshold: 1, unhealthy_threshold: 2 },
      },
    },
  });
  return { dir, framePort, proxyPort, config: loadConfig({ dir }) };
}

async function startNoAuth(dir: string, port: number) {
  const audit = memoryAuditSink();
  frame = await startFrame({
    config: loadConfig({ dir }),
    color: "blue",
    port,
    noAuth: true,
    audit,
    logger: createLogger({ level: "error" }),
  });
  return audit;
}

/** Polls until `probe` holds (its errors mean "not yet": the server may still be starting). */
const until = (probe: () => Promise<boolean>) => waitFor("the condition", probe, { intervalMs: 50, retryErrors: true });

describe("serve --no-auth answers this machine's developer only", () => {
  test("a direct loopback call works; another Host or a proxy's headers get 403, logged", async () => {
    const { dir, framePort } = await setUp();
    const audit = await startNoAuth(dir, framePort);
    const url = `http://127.0.0.1:${framePort}/frame/mcp`;
    const ok = await rpc(url, WHOAMI);
    expect(ok.status).toBe(200);
    expect((await json(ok)).result.structuredContent.role).toBe("admin");
    const proxied: Array<Record<string, string>> = [
      { host: "axe.axelabs.ai" },
      { "x-forwarded-for": "203.0.113.7" },
      { forwarded: "for=203.0.113.7" },
      { "x-request-id": "abc" },
    ];
    for (const headers of proxied) {
      const refused = await rpc(url, WHOAMI, headers);
      expect(refused.status).toBe(403);
      expect((await json(refused)).error.message).toMatch(/no-auth/);
    }
    expect(audit.events.filter((e) => e.reason === "no_auth_not_local").length).toBe(4);
  });

  test("through a real proxy process the no-auth frame refuses every MCP call", async () => {
    const { dir, framePort, proxyPort } = await setUp();
    const audit = await startNoAuth(dir, framePort);
    proxy = Bun.spawn([process.execPath, MAIN, "proxy", "run", "--config", dir], {
      stdout: "ignore",
      stderr: "ignore",
      stdin: "ignore",
      env: { ...process.env, AXE_CONFIG_DIR: "" },
    });
    const viaProxy = `http://127.0.0.1:${proxyPort}`;
    await until(async () => (await fetch(`${viaProxy}/healthz`)).ok);
    // Once the proxy routes to blue, the frame's answer (not the proxy's 502/503) comes back.
    let status = 0;
    await until(async () => {
      status = (await rpc(`${viaProxy}/frame/mcp`, WHOAMI)).status;
      return status !== 502 && status !== 503;
    });
    expect(status).toBe(403);
    const response = await rpc(`${viaProxy}/frame/mcp`, WHOAMI);
    expect(response.status).toBe(403);
    expect((await json(response)).error.message).toMatch(/no-auth/);
    expect(audit.events.some((e) => e.reason === "no_auth_not_local" && e.status === 403)).toBe(true);
    expect(audit.events.some((e) => e.outcome === "ok")).toBe(false);
  });

  test("the CLI refuses to start no-auth where the proxy keeps state or a service is installed for the data dir", async () => {
    const { dir, config } = await setUp();
    mkdirSync(config.paths.state, { recursive: true });
    writeFileSync(join(config.paths.state, "proxy.json"), "{}");
    const result = Bun.spawnSync(
      [process.execPath, MAIN, "serve", "--color", "blue", "--port", "0", "--config", dir, "--no-auth"],
      { stdout: "pipe", stderr: "pipe", env: { ...process.env, AXE_CONFIG_DIR: "" } },
    );
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr.toString()).toContain("proxy.json");
    expect(result.stderr.toString()).toMatch(/--no-auth/);

    const units = tempDir("axe-units");
    expect(productionFootprint(loadConfig({ dir }), [units])).toEqual([join(config.paths.state, "proxy.json")]);
    writeFileSync(join(units, "ai.axelabs.axe.other.service"), "ExecStart=/opt/elsewhere/current/blue/axe-appliance\n");
    writeFileSync(
      join(units, "ai.axelabs.axe.blue.service"),
      `ExecStart=${config.paths.data}/current/blue/axe-appliance serve --color blue\n`,
    );
    expect(productionFootprint(loadConfig({ dir }), [units, join(units, "missing")])).toEqual([
      join(config.paths.state, "proxy.json"),
      join(units, "ai.axelabs.axe.blue.service"),
    ]);
  });
});
