import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type Config, loadConfig } from "../../src/config/load.ts";
import { pointColor } from "../../src/deploy/colors.ts";
import { installRelease, stagingPath } from "../../src/deploy/releases.ts";
import { createLogger } from "../../src/lib/log.ts";
import { type ServiceName, type ServiceSpec, serviceSpec } from "../../src/services/backend.ts";
import { ChildBackend } from "../../src/services/child.ts";
import { Supervisor } from "../../src/services/supervisor.ts";
import { makeRelease } from "../deploy/fixtures.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";

const FIXTURE = join(import.meta.dir, "fixture-process.ts");
const backends: ChildBackend[] = [];

afterEach(async () => {
  for (const backend of backends.splice(0))
    for (const name of ["proxy", "blue", "green"] as const) await backend.stop(name);
});

function fixtureBackend(config: Config, env: Record<string, string> = {}, stopTimeoutMs = 5000) {
  const out = join(tempDir("axe-fixture"), "out.jsonl");
  const spec = (name: ServiceName): ServiceSpec => {
    const real = serviceSpec(config, name, [process.execPath, FIXTURE]);
    return { ...real, env: { ...real.env, FIXTURE_OUT: out, ...env } };
  };
  const backend = new ChildBackend(config, { spec, stopTimeoutMs });
  backends.push(backend);
  const lines = () =>
    existsSync(out)
      ? readFileSync(out, "utf8")
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l))
      : [];
  return { backend, lines, out };
}

const until = (check: () => boolean | Promise<boolean>, what: string) => waitFor(what, check);

describe("service spec", () => {
  test("a color runs the release colors.json points at, with AXE_RELEASE, its port and the config", async () => {
    const config = loadConfig({ dir: makeConfigDir({ appliance: { frame: { ports: { blue: 4710, green: 4711 } } } }) });
    const release = await makeRelease("2.0.0-spec");
    const staged = stagingPath(config.paths.data);
    copyFileSync(release.binary, staged);
    const installed = installRelease(config.paths.data, { manifest: release.manifest, jws: release.jws, file: staged });
    pointColor(config.paths.data, "green", "2.0.0-spec");
    const green = serviceSpec(config, "green");
    expect(green.program).toBe(installed.binary);
    expect(green.args).toEqual(["serve", "--color", "green", "--port", "4711", "--config", config.dir]);
    expect(green.env.AXE_RELEASE).toBe("2.0.0-spec");
    const blue = serviceSpec(config, "blue", ["/opt/axe/bin/axe-appliance"]);
    expect(blue.program).toBe("/opt/axe/bin/axe-appliance"); // no release yet: this binary
    const proxy = serviceSpec(config, "proxy", ["/x"]);
    expect(proxy.args).toEqual(["proxy", "run", "--config", config.dir]);
    expect(proxy.env).toEqual({ AXE_CONFIG_DIR: config.dir, BUN_JSC_forceRAMSize: "134217728" }); // as launchd and systemd set it
    expect(green.env.BUN_JSC_forceRAMSize).toBeUndefined();
  }, 30_000);
});

describe("child-process backend", () => {
  test("start, status, restart and stop real processes with their args and env", async () => {
    const config = loadConfig({ dir: makeConfigDir() });
    const { backend, lines } = fixtureBackend(config);
    expect((await backend.status("blue")).running).toBe(false);
    await backend.start("blue");
    await backend.start("blue"); // already running: no second copy
    await until(() => lines().length === 1, "blue to start");
    const first = lines()[0];
    expect(first.argv).toEqual(["serve", "--color", "blue", "--port", "3710", "--config", config.dir]);
    expect(first.config).toBe(config.dir);
    const status = await backend.status("blue");
    expect(status).toMatchObject({ name: "blue", running: true, pid: first.pid });

    // another backend object (another process, e.g. the next deploy) finds it through the PID file
    const again = new ChildBackend(config, { spec: backend.spec.bind(backend) });
    expect((await again.status("blue")).pid).toBe(first.pid);

    await backend.restart("blue");
    await until(() => lines().length === 2, "blue to start again");
    expect(lines()[1].pid).not.toBe(first.pid);
    expect(() => process.kill(first.pid, 0)).toThrow();

    await backend.stop("blue");
    expect((await backend.status("blue")).running).toBe(false);
    expect(() => process.kill(lines()[1].pid, 0)).toThrow();
  }, 30_000);

  test("a process that ignores SIGTERM is killed after the stop timeout", async () => {
    const config = loadConfig({ dir: makeConfigDir() });
    const { backend, lines } = fixtureBackend(config, { FIXTURE_IGNORE_TERM: "1" }, 300);
    await backend.start("green");
    await until(() => lines().length === 1, "green to start");
    await backend.stop("green");
    expect((await backend.status("green")).running).toBe(false);
    expect(() => process.kill(lines()[0].pid, 0)).toThrow();
  }, 30_000);

  test("lastWords is the error line a service printed since this backend started it, never an older one", async () => {
    const config = loadConfig({ dir: makeConfigDir() });
    const { backend, lines } = fixtureBackend(config, {
      FIXTURE_EXIT_AFTER_MS: "50",
      FIXTURE_SAY:
        "error: cannot listen on 127.0.0.1:4710: the address is in use\nhint: is another frame blue running?",
    });
    const log = backend.spec("blue").logFile;
    mkdirSync(dirname(log), { recursive: true });
    writeFileSync(log, "error: what an earlier run said\n");
    expect(backend.lastWords("blue")).toBeUndefined(); // not started by this backend
    await backend.start("blue");
    await until(async () => lines().length === 1 && !(await backend.status("blue")).running, "blue to start and die");
    expect(backend.lastWords("blue")).toBe("cannot listen on 127.0.0.1:4710: the address is in use");

    const quiet = fixtureBackend(config, { FIXTURE_EXIT_AFTER_MS: "50" }); // the same log file, a run that says nothing
    await quiet.backend.start("blue");
    await until(async () => quiet.lines().length === 1 && !(await quiet.backend.status("blue")).running, "blue to die");
    expect(quiet.backend.lastWords("blue")).toBeUndefined();
  }, 30_000);

  test("a service outlives the process that started it, in a process group of its own, and does not hold it", async () => {
    const config = loadConfig({ dir: makeConfigDir() });
    const { backend, lines, out } = fixtureBackend(config);
    const starter = Bun.spawn([process.execPath, join(import.meta.dir, "fixture-starter.ts"), config.dir, out], {
      stdout: "pipe",
      stderr: "inherit",
    });
    // the starter returns by itself: an exit code, not our kill after 20 s
    const timer = setTimeout(() => starter.kill("SIGKILL"), 20_000);
    expect(await starter.exited).toBe(0);
    clearTimeout(timer);
    expect(await new Response(starter.stdout).text()).toBe("started\n");
    await until(() => lines().length === 1, "blue to announce itself");
    const { pid } = lines()[0];
    expect((await backend.status("blue")).pid).toBe(pid); // found again through the PID file
    const group = Bun.spawnSync(["ps", "-o", "pgid=", "-p", String(pid)])
      .stdout.toString()
      .trim();
    expect(Number(group)).toBe(pid);
    await backend.stop("blue");
    expect((await backend.status("blue")).running).toBe(false); // gone, or a zombie its new parent has not reaped
  }, 30_000);
});

describe("supervisor", () => {
  test("starts what is down and restarts a process that dies, with growing delays", async () => {
    const config = loadConfig({ dir: makeConfigDir() });
    const { backend, lines } = fixtureBackend(config, { FIXTURE_EXIT_AFTER_MS: "150" });
    const logged: string[] = [];
    const supervisor = new Supervisor(
      [
        {
          name: "proxy",
          running: async () => (await backend.status("proxy")).running,
          start: () => backend.start("proxy"),
          paused: () => backend.restarting("proxy"),
        },
      ],
      { intervalMs: 20, minBackoffMs: 100, maxBackoffMs: 400, log: createLogger({ write: (l) => logged.push(l) }) },
    );
    supervisor.start();
    try {
      await until(() => lines().length >= 4, "three restarts");
    } finally {
      await supervisor.stop();
    }
    expect(supervisor.restarts("proxy")).toBeGreaterThanOrEqual(3);
    expect(logged.some((l) => JSON.parse(l).msg === "process is down; starting it again")).toBe(true);
  }, 30_000);

  test("a check that fails (a refused postmaster.pid) is logged once with its reason, and the process counts as down", async () => {
    const logged: string[] = [];
    let checks = 0;
    let starts = 0;
    const supervisor = new Supervisor(
      [
        {
          name: "postgres",
          running: async () => {
            checks++;
            throw new Error("/data/postgres/pgdata/postmaster.pid is a symbolic link");
          },
          start: async () => {
            starts++;
          },
        },
      ],
      { intervalMs: 10, minBackoffMs: 10_000, log: createLogger({ write: (l) => logged.push(l) }) },
    );
    supervisor.start();
    try {
      await until(() => checks >= 5, "five checks");
    } finally {
      await supervisor.stop();
    }
    const failures = logged.map((l) => JSON.parse(l)).filter((l) => l.msg.startsWith("cannot tell whether"));
    expect(failures).toEqual([
      expect.objectContaining({
        level: "error",
        process: "postgres",
        error: expect.objectContaining({ message: "/data/postgres/pgdata/postmaster.pid is a symbolic link" }),
      }),
    ]);
    expect(starts).toBe(1); // down, so started once; the backoff holds the next start
  }, 30_000);
});
