#!/usr/bin/env bun
/**
 * Proxy benchmark: the same ~200-byte upstream behind nginx (proxy_pass, keepalive upstream
 * pool), Caddy (reverse_proxy) and axe-appliance proxy; wrk at -c64 and -c256, the three in
 * turn, three rounds; prints medians, ratios to nginx, and peak RSS.
 *
 *   bun bench/proxy.ts [--rounds 3] [--duration 10] [--threads 2] [--only axe,nginx] [--axe-binary dist/axe-appliance]
 *
 * --axe-binary runs the compiled `axe-appliance proxy run` (as launchd runs it) instead of the
 * sources under bun; its peak RSS is the figure the targets name. The load average is printed
 * before and after: the machine may be shared.
 *
 * Installs nginx, caddy and wrk with apt-get when they are missing (Debian/Ubuntu, as root).
 * Everything listens on 127.0.0.1 on free ports and is stopped at the end.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PROXY_ENV } from "../src/services/backend.ts";
import { nginxConfig } from "./proxy/nginx-conf.ts";

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "10" },
    threads: { type: "string", default: "2" },
    only: { type: "string", default: "nginx,caddy,axe" },
    concurrency: { type: "string", default: "64,256" },
    "axe-binary": { type: "string" },
  },
});
const ROOT = join(import.meta.dir, "..");
const work = mkdtempSync(join(tmpdir(), "axe-bench-"));
const started: Bun.Subprocess[] = [];

function ensureTools(): void {
  const missing = ["nginx", "caddy", "wrk"].filter(
    (t) => !Bun.which(t) && !Bun.which(t, { PATH: "/usr/sbin:/usr/bin" }),
  );
  if (missing.length === 0) return;
  console.error(`installing ${missing.join(", ")} with apt-get`);
  const run = (args: string[]) =>
    Bun.spawnSync(args, {
      stdout: "inherit",
      stderr: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  run(["apt-get", "update"]);
  if (run(["apt-get", "install", "-y", ...missing]).exitCode !== 0)
    throw new Error("apt-get install failed; run as root on Debian/Ubuntu");
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await Bun.sleep(100);
  }
  throw new Error(`${url} never answered`);
}

function spawn(cmd: string[], env: Record<string, string> = {}, log = "/dev/null"): Bun.Subprocess {
  const child = Bun.spawn(cmd, {
    env: { ...process.env, ...env },
    stdout: Bun.file(log),
    stderr: Bun.file(log),
    stdin: "ignore",
  });
  started.push(child);
  return child;
}

/** Peak RSS in MB of a process and its children (nginx workers). */
function peakRssMb(pid: number): number {
  const pids = [
    pid,
    ...Bun.spawnSync(["pgrep", "-P", String(pid)])
      .stdout.toString()
      .split("\n")
      .filter(Boolean)
      .map(Number),
  ];
  let kb = 0;
  for (const p of pids) {
    try {
      kb += Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
    } catch {}
  }
  return Math.round(kb / 1024);
}

interface Target {
  name: string;
  url: string;
  pid: number;
}

async function startTargets(upstreamPort: number): Promise<Target[]> {
  const targets: Target[] = [];
  const only = new Set(flags.only!.split(","));
  if (only.has("nginx")) {
    const port = await freePort();
    const dir = join(work, "nginx");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "nginx.conf"), nginxConfig(dir, port, upstreamPort));
    const child = spawn(["nginx", "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf"), "-p", dir]);
    targets.push({ name: "nginx", url: `http://127.0.0.1:${port}`, pid: child.pid });
  }
  if (only.has("caddy")) {
    const port = await freePort();
    const file = join(work, "Caddyfile");
    writeFileSync(
      file,
      `{\n  admin off\n  auto_https off\n}\nhttp://127.0.0.1:${port} {\n  reverse_proxy 127.0.0.1:${upstreamPort}\n}\n`,
    );
    const child = spawn(["caddy", "run", "--config", file, "--adapter", "caddyfile"], {
      HOME: work,
      XDG_DATA_HOME: work,
      XDG_CONFIG_HOME: work,
    });
    targets.push({ name: "caddy", url: `http://127.0.0.1:${port}`, pid: child.pid });
  }
  if (only.has("axe")) {
    const port = await freePort();
    const dir = join(work, "axe");
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, "customers.yaml"),
      "customers:\n  - name: bench\n    domains: [bench.example]\n    host: bench.example\n    machine: bench\n    entra: { tenant_id: 122fb574-6f3c-4b8e-9d21-5a7c0e4f8b13, client_id: 0b7d3f21-94c6-4e1a-8f52-6a1d2c9e7b40, scope: frame.access }\n",
    );
    writeFileSync(
      join(dir, "appliance.yaml"),
      `customer: bench\nproxy:\n  listen: 127.0.0.1:${port}\n  upstreams: { blue: "http://127.0.0.1:${upstreamPort}", green: "http://127.0.0.1:${upstreamPort}" }\n`,
    );
    // with the environment launchd, systemd and `up` give the proxy (its heap sizing)
    const binary = flags["axe-binary"];
    const child = spawn(
      binary
        ? [binary, "proxy", "run", "--config", dir]
        : [process.execPath, join(ROOT, "bench", "proxy", "run-axe.ts"), dir],
      { ...PROXY_ENV },
      join(dir, "proxy.log"),
    );
    targets.push({ name: "axe", url: `http://127.0.0.1:${port}`, pid: child.pid });
  }
  for (const t of targets) await waitFor(`${t.url}/frame/bench`);
  return targets;
}

interface Run {
  rps: number;
  p99ms: number;
  errors: number;
  /** CPU time the proxy (all its processes) spent per request, in microseconds: robust on a shared machine. */
  cpuUs: number;
}

/** utime + stime of a process and its children, in clock ticks (100 per second). */
function cpuTicks(pid: number): number {
  const pids = [
    pid,
    ...Bun.spawnSync(["pgrep", "-P", String(pid)])
      .stdout.toString()
      .split("\n")
      .filter(Boolean)
      .map(Number),
  ];
  let ticks = 0;
  for (const p of pids) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {}
  }
  return ticks;
}

function wrk(url: string, connections: number, pid: number): Run {
  const before = cpuTicks(pid);
  const out = Bun.spawnSync([
    "wrk",
    `-t${flags.threads}`,
    `-c${connections}`,
    `-d${flags.duration}s`,
    "--latency",
    url,
  ]).stdout.toString();
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const p99ms = p99 ? Number(p99[1]) * (p99[2] === "us" ? 0.001 : p99[2] === "s" ? 1000 : 1) : NaN;
  const errorsMatch = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = non2xx + (errorsMatch ? errorsMatch.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const cpuUs = requests > 0 ? ((cpuTicks(pid) - before) * 10_000) / requests : NaN;
  return { rps, p99ms, errors, cpuUs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const loadAverage = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

async function main(): Promise<void> {
  ensureTools();
  const loadBefore = loadAverage();
  const upstreamPort = await freePort();
  spawn([process.execPath, join(ROOT, "bench", "proxy", "upstream.ts")], { PORT: String(upstreamPort) });
  await waitFor(`http://127.0.0.1:${upstreamPort}/`);
  const targets = await startTargets(upstreamPort);
  const levels = flags.concurrency!.split(",").map(Number);
  const results = new Map<string, Run[]>();
  for (const t of targets) wrk(`${t.url}/frame/bench`, 64, t.pid); // warm-up is not counted
  for (let round = 1; round <= Number(flags.rounds); round++) {
    for (const c of levels) {
      for (const t of targets) {
        const run = wrk(`${t.url}/frame/bench`, c, t.pid);
        const key = `${t.name}@${c}`;
        results.set(key, [...(results.get(key) ?? []), run]);
        console.error(
          `round ${round}  c${c}  ${t.name.padEnd(6)} ${run.rps.toFixed(0).padStart(7)} req/s  p99 ${run.p99ms.toFixed(2)} ms  cpu ${run.cpuUs.toFixed(1)} us/req  errors ${run.errors}`,
        );
      }
    }
  }
  const cores = navigator.hardwareConcurrency;
  console.log(
    `\nproxy benchmark: ${flags.rounds} rounds x ${flags.duration}s, wrk -t${flags.threads}, ${cores} cores, ~200-byte upstream (Bun), axe ${flags["axe-binary"] ? "compiled" : "under bun"}; load average ${loadBefore} before, ${loadAverage()} after`,
  );
  console.log(
    "| concurrency | proxy | req/s (median) | vs nginx | p99 ms (median) | vs nginx | CPU us/request (median) | vs nginx | errors | peak RSS MB |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const c of levels) {
    const nginx = results.get(`nginx@${c}`);
    for (const t of targets) {
      const runs = results.get(`${t.name}@${c}`)!;
      const rps = median(runs.map((r) => r.rps));
      const p99 = median(runs.map((r) => r.p99ms));
      const errors = runs.reduce((a, r) => a + r.errors, 0);
      const cpu = median(runs.map((r) => r.cpuUs));
      // ratios within each round (same minute, same neighbours), then their median
      const ratio = (pick: (r: Run) => number) =>
        nginx ? `${median(runs.map((r, i) => pick(r) / pick(nginx[i]!))).toFixed(2)}x` : "-";
      console.log(
        `| ${c} | ${t.name} | ${rps.toFixed(0)} | ${ratio((r) => r.rps)} | ${p99.toFixed(2)} | ${ratio((r) => r.p99ms)} | ${cpu.toFixed(1)} | ${ratio((r) => r.cpuUs)} | ${errors} | ${peakRssMb(t.pid)} |`,
      );
    }
  }
}

try {
  await main();
} finally {
  for (const child of started) child.kill("SIGTERM");
  await Promise.all(started.map((c) => c.exited));
  rmSync(work, { recursive: true, force: true });
}
