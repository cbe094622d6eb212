/**
 * `up`: the whole appliance in one terminal. Starts the embedded Postgres (when no database.url),
 * then proxy, blue and green as child processes under a supervisor that restarts them with
 * backoff; waits until both colors answer /healthz; stops everything on SIGINT/SIGTERM, also
 * when one comes while it is still starting (the caller's AbortSignal).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/load.ts";
import { openDatabase } from "../db/connect.ts";
import { EmbeddedPostgres } from "../db/embedded.ts";
import { colorUrl } from "../deploy/switch.ts";
import { DeployError } from "../lib/errors.ts";
import { isAlive } from "../lib/lock-file.ts";
import type { Logger } from "../lib/log.ts";
import { pollUntil } from "../lib/poll.ts";
import { proxyStatus } from "../proxy/admin-client.ts";
import { proxySettings } from "../proxy/settings.ts";
import { SERVICES } from "./backend.ts";
import { ChildBackend } from "./child.ts";
import { type Supervised, Supervisor } from "./supervisor.ts";

export interface RunningAppliance {
  backend: ChildBackend;
  proxyUrl: string;
  live: string;
  stop(): Promise<void>;
}

/** The embedded cluster under up's supervisor; `opened.pg` is set when this process started the server. */
export function postgresSupervised(config: Config, opened: { pg?: EmbeddedPostgres }): Supervised {
  const dir = join(config.paths.data, "postgres");
  let cluster: EmbeddedPostgres | undefined;
  return {
    name: "postgres",
    async running() {
      const pid = cluster?.serverPid();
      return pid !== undefined && isAlive(pid);
    },
    async start() {
      cluster = await EmbeddedPostgres.open({ dir, runAs: config.appliance.database.embedded_run_as });
      if (cluster.startedHere) opened.pg = cluster; // the process that starts it stops it
    },
  };
}

export async function upAppliance(
  config: Config,
  log: Logger,
  options: {
    healthTimeoutMs?: number;
    /** Aborted (a Ctrl-C while coming up): stop what was started and throw the signal's reason. */
    signal?: AbortSignal;
  } = {},
): Promise<RunningAppliance> {
  const backend = new ChildBackend(config);
  const opened: { pg?: EmbeddedPostgres } = {};
  const processes: Supervised[] = [];
  let supervisor: Supervisor | undefined;
  const stop = async () => {
    await supervisor?.stop();
    for (const name of ["green", "blue", "proxy"] as const) await backend.stop(name);
    await opened.pg?.stop({ force: true }); // the whole appliance stops, a psql left open or not
  };
  try {
    if (!config.appliance.database.url) {
      mkdirSync(config.paths.data, { recursive: true, mode: 0o755 }); // as root, Postgres runs as another user and must walk in
      const postgres = postgresSupervised(config, opened);
      await postgres.start(); // before the colors, which would otherwise race to start it
      await openDatabase(config); // creates the frame database once, so the two colors never race to create it
      processes.push(postgres);
    }
    for (const name of SERVICES)
      processes.push({
        name,
        running: async () => (await backend.status(name)).running,
        start: () => backend.start(name),
        paused: () => backend.restarting(name),
        lastWords: () => backend.lastWords(name),
      });
    options.signal?.throwIfAborted(); // the cluster's start can take a while, and the operator gave up
    supervisor = new Supervisor(processes, { log });
    supervisor.start();
    const socket = proxySettings(config).adminSocket;
    let seen = "the proxy does not answer";
    const live = await pollUntil(
      async () => {
        options.signal?.throwIfAborted();
        const status = await proxyStatus(socket).catch(() => undefined);
        if (status?.colors.blue.healthy && status.colors.green.healthy) return status.live;
        if (status)
          seen = `blue ${status.colors.blue.last_error ?? "?"}, green ${status.colors.green.last_error ?? "?"}`;
        return undefined;
      },
      { timeoutMs: options.healthTimeoutMs ?? 90_000, intervalMs: 200 },
    );
    if (live) return { backend, proxyUrl: `http://${config.appliance.proxy.listen}`, live, stop };
    const said = SERVICES.flatMap((name) => {
      const words = backend.lastWords(name);
      return words ? [`${name} said: ${words}`] : [];
    });
    throw new DeployError(
      "UP_TIMEOUT",
      `the appliance did not come up: ${[seen, ...said].join("; ")}`,
      `see the logs in ${join(config.paths.data, "logs")}; ${colorUrl(config, "blue")}/healthz`,
    );
  } catch (error) {
    await stop();
    throw error;
  }
}
