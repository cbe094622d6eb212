/**
 * Real processes for proxy tests: upstream colors as Bun child processes, the proxy in this
 * process (ProxyServer) or as `axe-appliance proxy run`. Everything binds 127.0.0.1 on port 0
 * and is stopped by `stopAll()` (call it in afterAll).
 */
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import type { DatabaseTarget } from "../../src/db/connect.ts";
import { createLogger } from "../../src/lib/log.ts";
import { ProxyServer } from "../../src/proxy/proxy-server.ts";
import { type ProxySettings, proxySettings } from "../../src/proxy/settings.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { freePort } from "../helpers/ports.ts";
import { waitFor } from "../helpers/wait.ts";

const BUN = process.execPath;
const ROOT = join(import.meta.dir, "..", "..");
const children = new Set<Bun.Subprocess>();
const proxies = new Set<ProxyServer>();

export interface Upstream {
  color: string;
  port: number;
  url: string;
  process: Bun.Subprocess<"ignore", "pipe", "pipe">;
}

export async function startUpstream(color: string, env: Record<string, string> = {}): Promise<Upstream> {
  const child = Bun.spawn([BUN, join(import.meta.dir, "fixtures", "upstream.ts")], {
    env: { ...process.env, COLOR: color, PORT: "0", ...env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  children.add(child);
  const line = await firstLine(child.stdout, (l) => l.includes('"port"'));
  const port = (JSON.parse(line) as { port: number }).port;
  return { color, port, url: `http://127.0.0.1:${port}`, process: child };
}

/**
 * A probe's timeout (timeout_ms) is generous in these configs: a color that answers its /healthz
 * late on a loaded machine must not be taken for down (the first probe decides alone when the
 * proxy starts). Tests that want a color down stop it or make it answer 503.
 */
const PROBE_TIMEOUT_MS = 10_000;

/** A config dir whose proxy fronts the given colors, with fast health checks. */
export function proxyConfigDir(
  blue: Upstream | string,
  green: Upstream | string,
  proxy: Record<string, unknown> = {},
): string {
  const url = (u: Upstream | string) => (typeof u === "string" ? u : u.url);
  return makeConfigDir({
    appliance: {
      proxy: {
        listen: "127.0.0.1:0",
        upstreams: { blue: url(blue), green: url(green) },
        health: { interval_ms: 100, timeout_ms: PROBE_TIMEOUT_MS, healthy_threshold: 2, unhealthy_threshold: 2 },
        drain_timeout_ms: 5_000,
        ...proxy,
      },
    },
  });
}

/** A config dir for real frame colors on free ports over `database`, behind a proxy on port 0 with fast health checks. */
export async function framePairConfigDir(
  database: DatabaseTarget,
): Promise<{ dir: string; blue: number; green: number }> {
  const [blue, green] = [await freePort(), await freePort()];
  const dir = makeConfigDir({
    database,
    appliance: {
      frame: { ports: { blue, green } },
      proxy: {
        listen: "127.0.0.1:0",
        health: { interval_ms: 100, timeout_ms: PROBE_TIMEOUT_MS, healthy_threshold: 1, unhealthy_threshold: 2 },
      },
    },
  });
  return { dir, blue, green };
}

export interface InProcessProxy {
  server: ProxyServer;
  url: string;
  settings: ProxySettings;
  socket: string;
  accessLines: () => Array<Record<string, unknown>>;
}

/** The proxy in this process, its access log captured; `adjust` changes what appliance.yaml cannot say. */
export async function startProxy(
  configDir: string,
  adjust: (settings: ProxySettings) => ProxySettings = (s) => s,
): Promise<InProcessProxy> {
  const settings = adjust(proxySettings(loadConfig({ dir: configDir })));
  let access = "";
  const server = new ProxyServer(settings, {
    log: createLogger({ level: "error" }),
    accessWrite: (chunk) => (access += chunk),
  });
  await server.start();
  proxies.add(server);
  return {
    server,
    settings,
    url: `http://127.0.0.1:${server.port}`,
    socket: settings.adminSocket,
    accessLines: () => {
      // biome-ignore lint/complexity/useLiteralKeys: the test reads the private log; a bracket keeps tsc quiet
      server["accessLog"].flush();
      return access
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

export interface ChildProxy {
  process: Bun.Subprocess<"ignore", "pipe", "pipe">;
  url: string;
  socket: string;
  /** Everything the proxy wrote on stderr so far (JSON lines). */
  stderr: () => string;
}

/** `axe-appliance proxy run --config DIR` as a child process. */
export async function spawnProxy(configDir: string, env: Record<string, string> = {}): Promise<ChildProxy> {
  const child = Bun.spawn([BUN, join(ROOT, "src", "main.ts"), "proxy", "run", "--config", configDir], {
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  children.add(child);
  let err = "";
  const reader = child.stderr.getReader();
  const decoder = new TextDecoder();
  let listening: string | undefined;
  while (!listening) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`proxy exited before listening: ${err}`);
    err += decoder.decode(value);
    listening = err.split("\n").find((l) => l.includes('"proxy listening"'));
  }
  void (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      err += decoder.decode(value);
    }
  })();
  const entry = JSON.parse(listening) as { listen: string; admin_socket: string };
  return { process: child, url: `http://${entry.listen}`, socket: entry.admin_socket, stderr: () => err };
}

export async function stopAll(): Promise<void> {
  for (const proxy of proxies) await proxy.stop();
  proxies.clear();
  for (const child of children) {
    child.kill("SIGKILL");
    await child.exited;
  }
  children.clear();
}

/** Resolves once `check()` is true (test/helpers/wait.ts: bounded generously, polled every 50 ms). */
export async function eventually(check: () => boolean | Promise<boolean>, what = "the condition"): Promise<void> {
  await waitFor(what, check, { intervalMs: 50 });
}

async function firstLine(stream: ReadableStream<Uint8Array>, match: (line: string) => boolean): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`stream ended before the expected line: ${text}`);
    text += decoder.decode(value);
    const line = text.split("\n").find(match);
    if (line) {
      reader.releaseLock();
      return line;
    }
  }
}
