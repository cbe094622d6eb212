#!/usr/bin/env bun
/**
 * frame's per-call overhead: `whoami` over HTTP with a real Entra token (RS256, verified against the
 * stand-in's JWKS) on `axe-appliance serve`, versus a bare MCP SDK stateless server with one echo tool
 * (bench/frame-bare-echo.ts). Same run, same client (fetch, N concurrent workers, a bounded number of
 * calls each), alternating rounds. Prints calls/s, p50, p99, the ratios, and each server's RSS.
 *
 *   bun bench/frame-whoami.ts [--clients 64] [--calls 4000] [--rounds 3]
 *
 * Targets (issue 3): frame >= 0.8x the bare server's calls/s, p99 <= 1.5x, RSS < 150 MB at 64 clients.
 */
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { CLIENT_AXE, CONNECTOR_CLIENT, makeConfigDir, TENANT_AXE } from "../test/helpers/config.ts";
import { EntraStandIn } from "../test/helpers/entra.ts";
import { freshDatabase, stopTestCluster } from "../test/helpers/postgres.ts";
import { freePort } from "../test/helpers/sshd.ts";
import { removeTempDirs } from "../test/helpers/tmp.ts";

const { values: flags } = parseArgs({
  options: {
    clients: { type: "string", default: "64" },
    calls: { type: "string", default: "4000" },
    rounds: { type: "string", default: "3" },
  },
});
const CLIENTS = Number(flags.clients);
const CALLS = Number(flags.calls);
const ROUNDS = Number(flags.rounds);
const MAIN = new URL("../src/main.ts", import.meta.url).pathname;
const BARE = new URL("./frame-bare-echo.ts", import.meta.url).pathname;

interface Target {
  name: string;
  url: string;
  body: string;
  headers: Record<string, string>;
  pid: number;
}
interface Result {
  callsPerSec: number;
  p50: number;
  p99: number;
}

async function waitFor(url: string, child: ReturnType<typeof Bun.spawn>) {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: server exited ${child.exitCode}`);
    if (
      await fetch(url, { method: "POST" }).then(
        () => true,
        () => false,
      )
    )
      return;
    await Bun.sleep(100);
  }
  throw new Error(`${url}: server did not start`);
}

/** CALLS tools/call requests from CLIENTS concurrent workers; every answer is checked. */
async function load(target: Target): Promise<Result> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < CALLS) {
        next++;
        const t0 = performance.now();
        const response = await fetch(target.url, { method: "POST", headers: target.headers, body: target.body });
        const text = await response.text();
        if (response.status !== 200 || !text.includes('"result"') || text.includes('"isError":true'))
          throw new Error(`${target.name}: ${response.status} ${text.slice(0, 200)}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { callsPerSec: latencies.length / seconds, p50: at(0.5), p99: at(0.99) };
}

function rssMb(pid: number): number {
  const out = spawnSync("ps", ["-o", "rss=", "-p", String(pid)], { encoding: "utf8" }).stdout.trim();
  return Math.round(Number(out) / 102.4) / 10;
}

const standIn = await EntraStandIn.start();
await standIn.addTenant(TENANT_AXE);
const db = await freshDatabase("bench");
const children: Array<ReturnType<typeof Bun.spawn>> = [];
try {
  const framePort = await freePort();
  const base = `http://127.0.0.1:${framePort}`;
  const dir = makeConfigDir({
    database: db.target,
    appliance: {
      frame: { public_url: base, entra_authority: standIn.authority, entra_v1_issuer_base: standIn.v1IssuerBase },
    },
  });
  const frame = Bun.spawn(
    [process.execPath, MAIN, "serve", "--color", "blue", "--port", String(framePort), "--config", dir],
    { stdout: "ignore", stderr: "ignore", env: { ...process.env, AXE_CONFIG_DIR: "", AXE_LOG_LEVEL: "warn" } },
  );
  const barePort = await freePort();
  const bare = Bun.spawn([process.execPath, BARE, String(barePort)], { stdout: "ignore", stderr: "inherit" });
  children.push(frame, bare);
  await waitFor(`${base}/frame/mcp`, frame);
  await waitFor(`http://127.0.0.1:${barePort}/`, bare);

  const token = await standIn.accessToken(
    TENANT_AXE,
    { clientId: CLIENT_AXE, version: 2 },
    CONNECTOR_CLIENT,
    { oid: crypto.randomUUID(), username: "bench@axellc.com" },
    { expiresInSec: 3600 },
  );
  const headers = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": "2025-11-25",
  };
  const call = (name: string, args: unknown) =>
    JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: args } });
  const targets: Target[] = [
    {
      name: "frame whoami (Entra RS256)",
      url: `${base}/frame/mcp`,
      body: call("whoami", {}),
      headers: { ...headers, authorization: `Bearer ${token}` },
      pid: frame.pid,
    },
    {
      name: "bare SDK echo (no auth)",
      url: `http://127.0.0.1:${barePort}/`,
      body: call("echo", { text: "hello" }),
      headers,
      pid: bare.pid,
    },
  ];
  for (const target of targets) await load({ ...target }).catch((e) => Promise.reject(e)); // warm-up round, not counted
  const results = new Map<string, Result[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < ROUNDS; round++)
    for (const target of round % 2 ? [...targets].reverse() : targets)
      results.get(target.name)!.push(await load(target));

  const best = (name: string) => {
    const rs = results.get(name)!;
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    return {
      callsPerSec: median(rs.map((r) => r.callsPerSec)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
    };
  };
  console.log(
    `frame-whoami: ${CLIENTS} concurrent clients, ${CALLS} calls per round, ${ROUNDS} rounds (medians), Bun ${Bun.version}`,
  );
  for (const target of targets) {
    const r = best(target.name);
    console.log(
      `  ${target.name.padEnd(28)} ${r.callsPerSec.toFixed(0).padStart(6)} calls/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms   RSS ${rssMb(target.pid)} MB`,
    );
  }
  const f = best(targets[0]!.name);
  const b = best(targets[1]!.name);
  console.log(
    `  ratio frame/bare: calls/s ${(f.callsPerSec / b.callsPerSec).toFixed(2)} (target >= 0.8), p99 ${(f.p99 / b.p99).toFixed(2)}x (target <= 1.5x), frame RSS ${rssMb(frame.pid)} MB (target < 150 MB)`,
  );
} finally {
  for (const child of children) child.kill("SIGTERM");
  await Promise.all(children.map((c) => c.exited));
  await db.drop();
  await stopTestCluster();
  await standIn.stop();
  removeTempDirs();
}
