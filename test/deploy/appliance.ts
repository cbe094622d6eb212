/**
 * An appliance under test for deploy tests: a config dir on free ports with a fresh database,
 * the operator's release key pinned, the child-process backend, and the real proxy (compiled
 * binary) started through that backend. Also the receiver as the compiled binary reading a
 * release stream on stdin, and a bounded MCP load through the proxy.
 */
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { type Config, loadConfig } from "../../src/config/load.ts";
import type { Sql } from "../../src/db/connect.ts";
import type { ReleaseDir } from "../../src/deploy/release-dir.ts";
import { encodeReleaseHeader } from "../../src/deploy/release-stream.ts";
import type { RunReport } from "../../src/deploy/steps.ts";
import { issueServiceToken } from "../../src/frame/auth/service-tokens.ts";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { proxySettings } from "../../src/proxy/settings.ts";
import { type ServiceName, serviceSpec } from "../../src/services/backend.ts";
import { ChildBackend } from "../../src/services/child.ts";
import { makeConfigDir, TEST_CUSTOMERS } from "../helpers/config.ts";
import { mcpPost } from "../helpers/mcp.ts";
import { freePort } from "../helpers/ports.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";
import { compiledBinary, makeRelease, releaseKeys } from "./fixtures.ts";

export interface ApplianceUnderTest {
  config: Config;
  /** The fresh database in the test cluster; none on the embedded default (`embedded: true`). */
  db?: TestDatabase;
  backend: ChildBackend;
  binary: string;
  proxyUrl: string;
  socket: string;
  stop(): Promise<void>;
}

/**
 * `healthIntervalMs`: the proxy's health check interval (default 100 ms; production's is 1000).
 * `embedded`: no database.url, as install.sh writes it: the cluster under data_dir, started by
 * whichever process needs it first. `runAs`: frame.run_as, with `keys init` run first as install.sh
 * runs it (blue and green then run as that account; the tests run as root).
 */
export async function startAppliance(
  options: { healthIntervalMs?: number; embedded?: boolean; runAs?: string } = {},
): Promise<ApplianceUnderTest> {
  const db = options.embedded ? undefined : await freshDatabase("deploy");
  const binary = await compiledBinary();
  const { publicPem } = await releaseKeys();
  const [blue, green, proxy] = [await freePort(), await freePort(), await freePort()];
  const dir = makeConfigDir({
    ...(db ? { database: db.target } : {}),
    customers: { ...TEST_CUSTOMERS, release_public_key: publicPem },
    appliance: {
      frame: {
        ports: { blue, green },
        entra_authority: "http://127.0.0.1:9",
        ...(options.runAs ? { run_as: options.runAs } : {}),
      },
      proxy: {
        listen: `127.0.0.1:${proxy}`,
        health: {
          interval_ms: options.healthIntervalMs ?? 100,
          timeout_ms: 1000,
          healthy_threshold: 2,
          unhealthy_threshold: 2,
        },
        drain_timeout_ms: 5000,
      },
      // a color that starts in 3 s alone can take 30 s and more on a loaded 2-core machine; the gate's
      // failures that tests provoke end at once (the color exits), so a long bound costs nothing
      deploy: { service_backend: "child", health_timeout_ms: 120_000 },
      ...(db ? {} : { data_dir: tempDir("axe-data") }), // one Postgres' account can walk into
    },
  });
  const config = loadConfig({ dir });
  // the proxy and any color without a release run the compiled binary, as on a machine
  const backend = new ChildBackend(config, {
    spec: (name: ServiceName) => serviceSpec(config, name, [binary]),
    stopTimeoutMs: 10_000,
  });
  if (options.runAs) {
    const keys = Bun.spawnSync([binary, "keys", "init", "--config", dir], { stderr: "pipe" });
    if (keys.exitCode !== 0) throw new Error(`keys init failed: ${keys.stderr.toString()}`);
  }
  await backend.start("proxy");
  const socket = proxySettings(config).adminSocket;
  await waitFor("the proxy's admin socket", () => proxyStatus(socket).then(() => true), { retryErrors: true });
  const app: ApplianceUnderTest = {
    config,
    ...(db ? { db } : {}),
    backend,
    binary,
    socket,
    proxyUrl: `http://127.0.0.1:${proxy}`,
    async stop() {
      for (const name of ["blue", "green", "proxy"] as const) await backend.stop(name);
      await db?.drop();
      if (!db) await runAppliance(app, ["db", "stop"]).done; // it outlives the colors that used it
    },
  };
  return app;
}

/** The bytes `deploy push` sends: header, then the binary. */
export function releaseStreamFile(release: ReleaseDir, mutate?: (bytes: Uint8Array) => Uint8Array): string {
  const file = join(tempDir("axe-stream"), "release.stream");
  const header = encodeReleaseHeader(release.jws);
  if (mutate) {
    const body = readFileSync(release.binary);
    const all = new Uint8Array(header.length + body.length);
    all.set(header, 0);
    all.set(body, header.length);
    writeFileSync(file, mutate(all));
    return file;
  }
  const fd = openSync(file, "w");
  writeSync(fd, header);
  writeSync(fd, readFileSync(release.binary));
  closeSync(fd);
  return file;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  report?: RunReport;
}

/** The report in a receiver's JSON lines (its last line), or a whole JSON report (`rollback --json`). */
export function reportOf(stdout: string): RunReport | undefined {
  for (const line of stdout.trim().split("\n").reverse()) {
    try {
      const { type, ...report } = JSON.parse(line) as { type?: string } & RunReport;
      if (type === "report") return report as RunReport;
    } catch {
      // not a JSON line
    }
  }
  try {
    return JSON.parse(stdout) as RunReport;
  } catch {
    return undefined;
  }
}

/** Runs the compiled binary with `args`, stdin from a file (`cwd`, `env`: where and with what its caller starts it; an undefined value unsets). */
export function runAppliance(
  app: ApplianceUnderTest,
  args: string[],
  stdinFile?: string,
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
) {
  const env = Object.entries({ ...process.env, AXE_DEPLOY_WHO: "operator@test", ...options.env }).filter(
    (entry): entry is [string, string] => entry[1] !== undefined,
  );
  const child = Bun.spawn([app.binary, ...args, "--config", app.config.dir], {
    stdin: stdinFile ? Bun.file(stdinFile) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: Object.fromEntries(env),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const done = (async (): Promise<CliRun> => {
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    return { code, stdout, stderr, report: reportOf(stdout) };
  })();
  return { child, done };
}

/** `deploy receive` of a new release `version` (the receiver's output is printed when it fails). */
export async function receiveRelease(app: ApplianceUnderTest, version: string): Promise<CliRun> {
  const run = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease(version))).done;
  if (run.code !== 0) console.error(run.stdout, run.stderr);
  return run;
}

export interface LoadResult {
  ok: number;
  failed: number;
  failures: string[];
  releases: Set<string>;
}

/** One MCP tools/list through the proxy, as `token`. */
export function toolsList(app: ApplianceUnderTest, token: string): Promise<Response> {
  return mcpPost(
    `${app.proxyUrl}/frame/mcp`,
    token,
    { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} },
    { signal: AbortSignal.timeout(30_000) },
  );
}

/** One MCP tools/call of `name` without arguments through the proxy, as `token`. */
function toolCall(app: ApplianceUnderTest, token: string, name: string): Promise<Response> {
  return mcpPost(
    `${app.proxyUrl}/frame/mcp`,
    token,
    { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: {} } },
    { signal: AbortSignal.timeout(30_000) },
  );
}

/**
 * MCP tools/list requests through the proxy from `workers` loops until `stop()` (at most 120 s),
 * with a token issued through `sql` (default: the test database's pool). With `tool`, a
 * tools/call of it instead (without arguments), which asks the database.
 */
export async function startLoad(app: ApplianceUnderTest, workers = 4, options: { sql?: Sql; tool?: string } = {}) {
  const sql = options.sql ?? app.db!.sql;
  const entity = app.config.customer.entities[0]!.name;
  const { token } = await issueServiceToken(sql, app.config.paths.secrets, {
    customer: app.config.customer.name,
    entity,
    role: "reader",
    name: "load",
    expiresInMs: 600_000,
  });
  const result: LoadResult = { ok: 0, failed: 0, failures: [], releases: new Set() };
  let running = true;
  const deadline = Date.now() + 120_000;
  const worker = async () => {
    while (running && Date.now() < deadline) {
      try {
        const response = options.tool ? await toolCall(app, token, options.tool) : await toolsList(app, token);
        const text = await response.text();
        const answered = options.tool
          ? text.includes('"result"') && !text.includes('"isError":true')
          : text.includes('"tools"');
        if (response.status === 200 && answered) result.ok++;
        else {
          result.failed++;
          result.failures.push(`HTTP ${response.status} ${text.slice(0, 120)}`);
        }
      } catch (error) {
        result.failed++;
        result.failures.push((error as Error).message);
      }
    }
  };
  const loops = Array.from({ length: workers }, worker);
  return {
    result,
    /** Waits until `more` requests beyond those done so far have been answered (ok or not). */
    async answered(more: number): Promise<void> {
      const target = result.ok + result.failed + more;
      await waitFor(`${more} more answers to the load`, () => result.ok + result.failed >= target);
    },
    async stop(): Promise<LoadResult> {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}

export async function healthOf(url: string): Promise<{ color: string; release: string }> {
  const response = await fetch(`${url}/healthz`);
  return (await response.json()) as { color: string; release: string };
}
