#!/usr/bin/env bun
/**
 * frame data benchmark: get_record and create_record against whoami (no database work) on the same
 * running server, over HTTP with service-token auth, the Postgres audit sink and PII encryption,
 * 32 concurrent clients. Prints calls/s, p50 and p99 per tool, the CPU each call cost the serve
 * process, Postgres and this load generator (bench/cpu-time.ts; steady on a shared machine when
 * calls/s and p99 are not), and the ratio to whoami. The load generator is plain fetch, the same
 * for every tool, so it takes the same share of the two cores in every row.
 *
 *   bun bench/frame-data.ts [--clients 32] [--duration 8] [--rounds 2] [--warmup 3] [--only get_record,...] [--profile DIR]
 *
 * Each tool first runs `--warmup` seconds unmeasured: JavaScriptCore compiles the hot paths in tiers,
 * and a server that has served a few thousand calls is the one employees meet (without it, the
 * first measured round costs serve ~25% more CPU per call than the later ones).
 *
 * `--profile DIR` starts serve under `bun --cpu-prof-md` and leaves the profile in DIR when it exits.
 *
 * The server is `axe-appliance serve` as a child process on a throwaway Postgres cluster.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config/load.ts";
import { issueServiceToken } from "../src/frame/auth/service-tokens.ts";
import { makeConfigDir } from "../test/helpers/config.ts";
import { freshDatabase, stopTestCluster, testCluster } from "../test/helpers/postgres.ts";
import { freePort } from "../test/helpers/sshd.ts";
import { removeTempDirs } from "../test/helpers/tmp.ts";
import { clusterCpuSeconds, cpuSeconds, ownCpuSeconds } from "./cpu-time.ts";

const { values: flags } = parseArgs({
  options: {
    clients: { type: "string", default: "32" },
    duration: { type: "string", default: "8" },
    rounds: { type: "string", default: "2" },
    warmup: { type: "string", default: "3" },
    only: { type: "string" },
    profile: { type: "string" },
  },
});
const CLIENTS = Number(flags.clients);
const DURATION_MS = Number(flags.duration) * 1000;
const ROUNDS = Number(flags.rounds);
const WARMUP_MS = Number(flags.warmup) * 1000;
const MAIN = new URL("../src/main.ts", import.meta.url).pathname;

type Args = () => Record<string, unknown>;

async function main() {
  const db = await freshDatabase("bench");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const dir = makeConfigDir({ database: db.target, appliance: { frame: { public_url: base } } });
  const profile = flags.profile ? ["--cpu-prof-md", `--cpu-prof-dir=${flags.profile}`] : [];
  const server = Bun.spawn(
    [process.execPath, ...profile, MAIN, "serve", "--color", "blue", "--port", String(port), "--config", dir],
    {
      stdout: "ignore",
      stderr: Bun.file(`${dir}/serve.log`),
      env: { ...process.env, AXE_CONFIG_DIR: "", AXE_LOG_LEVEL: "error" },
    },
  );
  try {
    await waitForHealth(`${base}/healthz`).catch(async (error) => {
      console.error(await Bun.file(`${dir}/serve.log`).text());
      throw error;
    });
    const config = loadConfig({ dir });
    const { token } = await issueServiceToken(db.sql, config.paths.secrets, {
      customer: "axe",
      entity: "axe",
      role: "admin",
      name: "bench",
      expiresInMs: 3_600_000,
    });
    const callTool = toolCaller(`${base}/frame/mcp`, token);
    await callTool("define_collection", {
      name: "people",
      fields: {
        name: { type: "string", required: true, searchable: true },
        email: { type: "string", pii: true },
        phone: { type: "string", pii: true },
        age: { type: "integer" },
      },
    });
    const ids: string[] = [];
    for (let i = 0; i < 200; i++)
      ids.push((await callTool("create_record", { collection: "people", values: person(i) })).id as string);
    let n = 0;
    const only = flags.only?.split(",");
    const tools = (
      [
        ["whoami", () => ({})],
        ["get_record", () => ({ id: ids[n++ % ids.length] })],
        ["create_record", () => ({ collection: "people", values: person(n++) })],
      ] satisfies Array<[string, Args]>
    ).filter(([tool]) => !only || only.includes(tool));
    if (tools.length === 0) throw new Error(`--only ${flags.only}: choose from whoami, get_record, create_record`);
    console.log(
      `frame data benchmark: ${CLIENTS} clients, ${DURATION_MS / 1000}s per tool, ${ROUNDS} rounds after ${WARMUP_MS / 1000}s of warm-up per tool, ${navigator.hardwareConcurrency} cores`,
    );
    const results = new Map<string, Stats[]>();
    const pgdata = join((await testCluster()).dir, "pgdata");
    const meters: Meters = {
      server: () => cpuSeconds(server.pid),
      postgres: () => clusterCpuSeconds(pgdata),
      client: ownCpuSeconds,
    };
    for (const [tool, args] of tools) await load(callTool, tool, args, meters, WARMUP_MS);
    for (let round = 0; round < ROUNDS; round++)
      for (const [tool, args] of tools) {
        const stats = await load(callTool, tool, args, meters);
        results.set(tool, [...(results.get(tool) ?? []), stats]);
      }
    // The median round per tool (by calls/s); every round is printed too, since the machine is shared.
    const median = (tool: string) => [...results.get(tool)!].sort((a, b) => a.rate - b.rate)[Math.floor(ROUNDS / 2)]!;
    const whoami = results.has("whoami") ? median("whoami") : undefined;
    const row = (label: string, s: Stats, ratio: string) =>
      `${label.padEnd(22)} ${s.rate.toFixed(0).padStart(8)} ${s.p50.toFixed(1).padStart(8)} ${s.p99.toFixed(1).padStart(8)} ${String(s.errors).padStart(7)} ${us(s.cpu.server)} ${us(s.cpu.postgres)} ${us(s.cpu.client)}   ${ratio}`;
    console.log(
      `\n${"tool".padEnd(22)} ${"calls/s".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"errors".padStart(7)} ${"serve us".padStart(9)} ${"pg us".padStart(9)} ${"client us".padStart(9)}   vs whoami (calls/s, p99)`,
    );
    for (const [tool] of tools) {
      for (const [i, s] of results.get(tool)!.entries()) console.log(row(`${tool} round ${i + 1}`, s, ""));
      const s = median(tool);
      console.log(
        row(
          `${tool} median`,
          s,
          whoami ? `${(s.rate / whoami.rate).toFixed(2)}x, ${(s.p99 / whoami.p99).toFixed(2)}x` : "",
        ),
      );
    }
    console.log(
      "\n(every call authenticated with a service token and audited in Postgres; median = the round with the median calls/s;",
    );
    console.log(
      " CPU us/call = user+system time of the serve process, the Postgres cluster and this load generator over the round, per call)",
    );
  } finally {
    server.kill("SIGTERM");
    await server.exited;
    await db.drop();
    await stopTestCluster();
    removeTempDirs();
  }
}

function person(i: number) {
  return {
    name: `Person ${i}`,
    email: `person${i}@example.com`,
    phone: `+41 79 ${String(1_000_000 + i)}`,
    age: 20 + (i % 50),
  };
}

interface Stats {
  rate: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU seconds per call, by process. */
  cpu: Record<keyof Meters, number>;
}

/** CPU seconds so far of the serve process, the Postgres cluster and this process. */
type Meters = Record<"server" | "postgres" | "client", () => number>;

const us = (seconds: number) => (Number.isNaN(seconds) ? "-" : (seconds * 1e6).toFixed(0)).padStart(9);

async function load(
  callTool: ReturnType<typeof toolCaller>,
  tool: string,
  args: Args,
  meters: Meters,
  durationMs = DURATION_MS,
): Promise<Stats> {
  const latencies: number[] = [];
  let errors = 0;
  const before = { server: meters.server(), postgres: meters.postgres(), client: meters.client() };
  const started = performance.now();
  const until = started + durationMs;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        try {
          await callTool(tool, args());
          latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  const perCall = (key: keyof Meters) => (meters[key]() - before[key]) / latencies.length;
  return {
    rate: latencies.length / elapsed,
    p50: at(0.5),
    p99: at(0.99),
    errors,
    cpu: { server: perCall("server"), postgres: perCall("postgres"), client: perCall("client") },
  };
}

/** One stateless JSON-RPC tools/call per request, as the SDK client sends it. */
function toolCaller(url: string, token: string) {
  let id = 0;
  return async (name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method: "tools/call", params: { name, arguments: args } }),
    });
    const text = await response.text();
    const json = text.startsWith("{") ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? "{}");
    const message = JSON.parse(json) as {
      result?: { isError?: boolean; structuredContent?: Record<string, unknown>; content?: Array<{ text: string }> };
    };
    if (response.status !== 200 || !message.result || message.result.isError)
      throw new Error(`${name}: ${response.status} ${message.result?.content?.[0]?.text ?? text.slice(0, 200)}`);
    return message.result.structuredContent ?? {};
  };
}

async function waitForHealth(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await Bun.sleep(100);
  }
  throw new Error(`${url} never became healthy (see serve.log in the config directory)`);
}

await main();
