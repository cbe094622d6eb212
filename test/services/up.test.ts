import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { ensureDevConfig } from "../../src/services/dev-config.ts";
import { MAIN, REPO } from "../helpers/cli.ts";
import { mcpPost } from "../helpers/mcp.ts";
import { freePort } from "../helpers/ports.ts";
import { processesNaming } from "../helpers/processes.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";

const spawned: Array<ReturnType<typeof Bun.spawn>> = [];
const pidsToReap: number[] = [];
const postmastersToReap: string[] = [];

afterEach(async () => {
  for (const child of spawned.splice(0)) {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await Promise.race([child.exited, Bun.sleep(20_000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }
  for (const file of postmastersToReap.splice(0)) {
    if (existsSync(file)) pidsToReap.push(Number(readFileSync(file, "utf8").split("\n")[0])); // a failed run must not leave its cluster behind
  }
  for (const pid of pidsToReap.splice(0)) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone, as it should be
    }
  }
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The last lines of every service log, so a failure in CI says what the children said. */
function logTails(dir: string): string {
  const logs = join(dir, "data", "logs");
  if (!existsSync(logs)) return "(no logs)";
  return readdirSync(logs)
    .map((name) => `== ${name}\n${readFileSync(join(logs, name), "utf8").split("\n").slice(-15).join("\n")}`)
    .join("\n");
}

/** A dev directory on free ports (metrics off: the default 127.0.0.1:3714 may be anyone's), its cluster reaped after. */
async function devDirOnFreePorts() {
  const dir = tempDir("axe-dev");
  const ports = { blue: await freePort(), green: await freePort(), proxy: await freePort() };
  ensureDevConfig(dir, { ...ports, metrics: "off" });
  const postmaster = join(dir, "data", "postgres", "pgdata", "postmaster.pid");
  postmastersToReap.push(postmaster);
  return { dir, ports, postmaster };
}

/** `up --dev` on `dir`, from source, stopped after the test if it still runs. */
function spawnUp(dir: string) {
  const up = Bun.spawn([process.execPath, MAIN, "up", "--dev"], {
    cwd: REPO,
    env: { ...process.env, AXE_DEV_DIR: dir, AXE_CONFIG_DIR: "" },
    stdout: "pipe",
    stderr: "pipe",
  });
  spawned.push(up);
  return up;
}

describe("up --dev", () => {
  test("a fresh dev directory holds a valid config with a dev customer and entity", () => {
    const dir = tempDir("axe-dev");
    expect(ensureDevConfig(dir, { blue: 4710, green: 4711, proxy: 4712 })).toBe(true);
    expect(ensureDevConfig(dir)).toBe(false); // never overwritten
    const config = loadConfig({ dir });
    expect(config.customer.name).toBe("dev");
    expect(config.customer.entities.map((e) => e.name)).toEqual(["dev"]);
    expect(config.appliance.proxy.listen).toBe("127.0.0.1:4712");
    expect(config.appliance.proxy.metrics_listen).toBe("127.0.0.1:3714"); // the default unless asked
    expect(config.appliance.deploy.service_backend).toBe("child");
  });

  test("runs Postgres, blue, green and proxy; prints a working token and the claude line; restarts a killed color; Ctrl-C (even twice) stops all", async () => {
    const { dir, ports, postmaster } = await devDirOnFreePorts();
    const up = spawnUp(dir);
    let out = "";
    const upFailed = async (what: string) => {
      up.kill("SIGINT"); // its stderr ends only when it does
      return new Error(`up ${what}:\n${out}\n${await new Response(up.stderr).text()}\n${logTails(dir)}`);
    };
    const reader = up.stdout.getReader();
    const deadline = Date.now() + 120_000;
    while (!out.includes("Ctrl-C stops everything")) {
      if (Date.now() > deadline || up.exitCode !== null) throw await upFailed("did not come up");
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    if (!out.includes("Ctrl-C stops everything")) throw await upFailed("exited early");
    const pids = Object.fromEntries(
      ["proxy", "blue", "green"].map((name) => [
        name,
        JSON.parse(readFileSync(join(dir, "data", "run", "services", `${name}.pid`), "utf8")).pid as number,
      ]),
    );
    pidsToReap.push(...Object.values(pids));

    const mcpUrl = `http://127.0.0.1:${ports.proxy}/frame/mcp`;
    const line = out.split("\n").find((l) => l.includes("claude mcp add"))!;
    expect(line).toMatch(
      new RegExp(
        `^  claude mcp add --transport http axe ${mcpUrl.replaceAll(".", "\\.")} --header "Authorization: Bearer axe_st_[A-Za-z0-9_-]+"$`,
      ),
    );
    const token = /Bearer (axe_st_[A-Za-z0-9_-]+)/.exec(line)![1]!;
    const list = await mcpPost(mcpUrl, token, { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} });
    expect(list.status).toBe(200);
    expect(await list.text()).toContain('"whoami"');

    // a color that dies is started again by the supervisor
    process.kill(pids.green!, "SIGKILL");
    const back = Date.now() + 60_000;
    let greenPid = pids.green;
    while (
      greenPid === pids.green ||
      !(await fetch(`http://127.0.0.1:${ports.green}/healthz`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (Date.now() > back) throw new Error(`green was not restarted:\n${logTails(dir)}`);
      await Bun.sleep(200);
      greenPid = JSON.parse(readFileSync(join(dir, "data", "run", "services", "green.pid"), "utf8")).pid;
    }
    pidsToReap.push(greenPid!);
    expect(greenPid).not.toBe(pids.green);

    // Ctrl-C twice: the second signal must not cut the stop short and orphan the services.
    up.kill("SIGINT");
    await Bun.sleep(100);
    up.kill("SIGINT");
    expect(await up.exited).toBe(0);
    for (const pid of [pids.proxy!, pids.blue!, greenPid!]) expect(alive(pid)).toBe(false);
    expect(await Bun.file(postmaster).exists()).toBe(false);
  }, 180_000);

  test("a port another program holds: up says which and why, and Ctrl-C while it is still coming up stops all it started", async () => {
    const { dir, ports, postmaster } = await devDirOnFreePorts();
    const holder = Bun.listen({ hostname: "127.0.0.1", port: ports.blue, socket: { data() {} } }); // someone else's blue port
    try {
      const up = spawnUp(dir);
      let err = "";
      void (async () => {
        for await (const chunk of up.stderr) err += new TextDecoder().decode(chunk);
      })();
      const pidOf = (name: string) => {
        const file = join(dir, "data", "run", "services", `${name}.pid`);
        return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")).pid as number) : undefined;
      };
      // The supervisor's line names what blue said on its way out, not only that it is down again.
      const said = await waitFor(`up to say why blue is down (stderr so far:\n${err})`, () =>
        err
          .split("\n")
          .find(
            (line) => line.includes("process is down") && line.includes('"process":"blue"') && line.includes("reason"),
          ),
      );
      expect(said).toContain(`cannot listen on 127.0.0.1:${ports.blue}: the address is in use`);
      expect(err).not.toContain("unexpected failure");
      const started = ["proxy", "green"].map((name) => pidOf(name)!);
      pidsToReap.push(...started);
      expect(existsSync(postmaster)).toBe(true);

      up.kill("SIGINT"); // still waiting for blue to answer
      expect(await up.exited).toBe(0);
      for (const pid of started) expect(alive(pid)).toBe(false);
      expect(existsSync(postmaster)).toBe(false);
      expect(processesNaming([dir])).toEqual([]);
    } finally {
      holder.stop(true);
    }
  }, 180_000);
});
