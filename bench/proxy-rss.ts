#!/usr/bin/env bun
/**
 * Where the compiled proxy's memory goes: `axe-appliance proxy run` in front of the Bun upstream
 * (bench/proxy/upstream.ts), idle 2 s after it answers, then wrk -t2 -c64 for 4 s and -c256 for
 * 6 s; prints VmRSS idle (anonymous + file-backed pages), the peak (VmHWM), VmRSS after, and the
 * CPU time per request. Variants run in turn within each round (memory holds up on a shared
 * machine, CPU does not: compare CPU only within a round), medians at the end.
 *
 *   npm run build -- --out /tmp/dist
 *   bun bench/proxy-rss.ts --binary /tmp/dist/axe-appliance [--rounds 3] \
 *     [--variant 'omg0=BUN_JSC_useOMGJIT=0'] [--variant 'name=VAR=value,VAR=value'] [--no-service-env]
 *
 * Every variant starts from the service environment (PROXY_ENV, as launchd, systemd and `up` give
 * it) unless --no-service-env; `service` is that environment alone and always runs first.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PROXY_ENV } from "../src/services/backend.ts";

const { values: flags } = parseArgs({
  options: {
    binary: { type: "string" },
    rounds: { type: "string", default: "3" },
    variant: { type: "string", multiple: true, default: [] },
    "no-service-env": { type: "boolean", default: false },
  },
});
if (!flags.binary) throw new Error("--binary PATH (npm run build -- --out DIR, then DIR/axe-appliance)");
if (!Bun.which("wrk")) throw new Error("wrk is missing: apt-get install wrk");
const binary = flags.binary;
const base: Record<string, string> = flags["no-service-env"] ? {} : { ...PROXY_ENV };
const variants: Array<[name: string, env: Record<string, string>]> = [
  ["service", base],
  ...flags.variant.map((spec): [string, Record<string, string>] => {
    const [name, list = ""] = spec.split(/=(.*)/s) as [string, string?];
    const env = Object.fromEntries(list.split(",").map((pair) => pair.split(/=(.*)/s).slice(0, 2) as [string, string]));
    return [name, { ...base, ...env }];
  }),
];
const ROOT = join(import.meta.dir, "..");
const work = mkdtempSync(join(tmpdir(), "axe-rss-"));
const CUSTOMERS =
  "customers:\n  - name: bench\n    domains: [bench.example]\n    host: bench.example\n    machine: bench\n    entra: { tenant_id: 122fb574-6f3c-4b8e-9d21-5a7c0e4f8b13, client_id: 0b7d3f21-94c6-4e1a-8f52-6a1d2c9e7b40, scope: frame.access }\n";

function freePort(): number {
  const socket = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = socket.port;
  socket.stop(true);
  return port;
}

interface Memory {
  rss: number;
  hwm: number;
  anon: number;
  file: number;
}

/** VmRSS, VmHWM, RssAnon and RssFile of `pid`, in MB. */
function memory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const mb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: mb("VmRSS"), hwm: mb("VmHWM"), anon: mb("RssAnon"), file: mb("RssFile") };
}

/** utime + stime of `pid` in clock ticks (100 per second). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

interface Result {
  idle: Memory;
  peak: number;
  after: Memory;
  cpuUs: number;
}

async function measure(
  upstreamPort: number,
  env: Record<string, string>,
  round: number,
  name: string,
): Promise<Result> {
  const dir = join(work, `${name}-${round}`);
  const port = freePort();
  Bun.spawnSync(["mkdir", "-p", dir]);
  writeFileSync(join(dir, "customers.yaml"), CUSTOMERS);
  writeFileSync(
    join(dir, "appliance.yaml"),
    `customer: bench\nproxy:\n  listen: 127.0.0.1:${port}\n  metrics_listen: 127.0.0.1:${freePort()}\n  upstreams: { blue: "http://127.0.0.1:${upstreamPort}", green: "http://127.0.0.1:${upstreamPort}" }\n`,
  );
  const child = Bun.spawn([binary, "proxy", "run", "--config", dir], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, ...env },
    stdout: Bun.file(join(dir, "proxy.log")),
    stderr: Bun.file(join(dir, "proxy.log")),
    stdin: "ignore",
  });
  try {
    const url = `http://127.0.0.1:${port}/frame/bench`;
    for (let i = 0; ; i++) {
      if (
        await fetch(url).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 100) throw new Error(`the proxy never answered; see ${join(dir, "proxy.log")}`);
      await Bun.sleep(100);
    }
    await Bun.sleep(2_000);
    const idle = memory(child.pid);
    const before = cpuTicks(child.pid);
    let requests = 0;
    for (const [connections, seconds] of [
      [64, 4],
      [256, 6],
    ]) {
      const out = Bun.spawnSync(["wrk", "-t2", `-c${connections}`, `-d${seconds}s`, url]).stdout.toString();
      requests += Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
    }
    const cpuUs = ((cpuTicks(child.pid) - before) * 10_000) / Math.max(requests, 1);
    const after = memory(child.pid);
    return { idle, peak: after.hwm, after, cpuUs };
  } finally {
    child.kill("SIGTERM");
    await child.exited;
  }
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const f1 = (n: number) => n.toFixed(1);

const upstream = Bun.spawn([process.execPath, join(ROOT, "bench", "proxy", "upstream.ts")], {
  stdout: "pipe",
  stderr: "inherit",
});
try {
  const first = await upstream.stdout.getReader().read();
  const upstreamPort = (JSON.parse(new TextDecoder().decode(first.value)) as { port: number }).port;
  const results = new Map<string, Result[]>(variants.map(([name]) => [name, []]));
  for (let round = 1; round <= Number(flags.rounds); round++)
    for (const [name, env] of variants) {
      const r = await measure(upstreamPort, env, round, name);
      results.get(name)!.push(r);
      console.log(
        `round ${round} ${name}: idle ${f1(r.idle.rss)} MB (anon ${f1(r.idle.anon)}, file ${f1(r.idle.file)}), peak ${f1(r.peak)}, after ${f1(r.after.rss)} (anon ${f1(r.after.anon)}, file ${f1(r.after.file)}), CPU ${f1(r.cpuUs)} us/request`,
      );
    }
  console.log(
    "\n| variant | idle MB | peak MB (VmHWM) | after MB | CPU us/request | CPU vs service (median of rounds) |",
  );
  console.log("|---|---|---|---|---|---|");
  const service = results.get("service")!;
  for (const [name, rs] of results) {
    const ratio = median(rs.map((r, i) => r.cpuUs / service[i]!.cpuUs));
    console.log(
      `| ${name} | ${f1(median(rs.map((r) => r.idle.rss)))} | ${f1(median(rs.map((r) => r.peak)))} (${f1(Math.min(...rs.map((r) => r.peak)))}-${f1(Math.max(...rs.map((r) => r.peak)))}) | ${f1(median(rs.map((r) => r.after.rss)))} | ${f1(median(rs.map((r) => r.cpuUs)))} | ${ratio.toFixed(2)}x |`,
    );
  }
} finally {
  upstream.kill();
  rmSync(work, { recursive: true, force: true });
}
