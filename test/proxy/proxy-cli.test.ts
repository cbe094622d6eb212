/** `axe-appliance proxy ...` as an operator runs it: real child processes, real signals. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { type ChildProxy, eventually, proxyConfigDir, spawnProxy, startUpstream, stopAll } from "./harness.ts";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
let configDir: string;
let proxy: ChildProxy;

beforeAll(async () => {
  const [blue, green] = await Promise.all([
    startUpstream("blue", { RELEASE: "3.0.0" }),
    startUpstream("green", { RELEASE: "3.1.0" }),
  ]);
  configDir = proxyConfigDir(blue, green);
  proxy = await spawnProxy(configDir);
});
afterAll(stopAll);

function cli(...args: string[]) {
  const result = Bun.spawnSync([process.execPath, MAIN, "proxy", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode, out: result.stdout.toString(), err: result.stderr.toString() };
}

test("--help lists the real subcommands", () => {
  const help = cli("--help");
  expect(help.code).toBe(0);
  for (const name of ["run", "status", "switch", "drain", "pause", "resume"]) expect(help.out).toContain(`  ${name}`);
  expect(cli("run", "--help").out).toContain("SIGTERM");
});

test("status, switch, pause and resume talk to the running proxy", () => {
  const status = cli("status", "--config", configDir);
  expect(status.code).toBe(0);
  expect(status.out).toContain("live: blue");
  expect(status.out).toContain("release 3.1.0");
  const json = JSON.parse(cli("status", "--json", "--config", configDir).out) as { live: string };
  expect(json.live).toBe("blue");
  expect(cli("switch", "green", "--config", configDir)).toMatchObject({ code: 0, out: "live: green (was blue)\n" });
  expect(cli("pause", "--config", configDir).code).toBe(0);
  expect(cli("resume", "--config", configDir).out).toContain("resumed");
  expect(cli("drain", "--config", configDir, "--timeout", "1000").out).toContain("blue: drained");
});

test("a bad color is a usage error (exit 2); an unreachable proxy is exit 9 with a hint", () => {
  const bad = cli("switch", "purple", "--config", configDir);
  expect(bad.code).toBe(2);
  expect(bad.err).toContain("COLOR must be blue or green");
  const other = proxyConfigDir("http://127.0.0.1:1", "http://127.0.0.1:2");
  const down = cli("status", "--config", other);
  expect(down.code).toBe(9);
  expect(down.err).toContain("axe-appliance proxy run");
});

test("SIGTERM: in-flight requests finish, then the proxy exits 0", async () => {
  const slow = fetch(`${proxy.url}/frame/slow?ms=1500`);
  await eventually(async () => (await proxyStatus(proxy.socket)).colors.green.inflight === 1);
  proxy.process.kill("SIGTERM");
  const response = await slow;
  expect(response.status).toBe(200);
  expect(((await response.json()) as { color: string }).color).toBe("green");
  expect(await proxy.process.exited).toBe(0);
  expect(proxy.stderr()).toContain('"proxy stopped"');
  const after = await fetch(`${proxy.url}/healthz`).then(
    () => "answered",
    () => "refused",
  );
  expect(after).toBe("refused");
});

test("status prints what a color's /healthz said without control sequences; --json keeps it as sent", async () => {
  const hostile = "3.2.0\x1b]0;owned\x07\x1b[2K\x1b[1A\u202e";
  const [blue, green] = await Promise.all([startUpstream("blue"), startUpstream("green", { RELEASE: hostile })]);
  const dir = proxyConfigDir(blue, green);
  const own = await spawnProxy(dir);
  await eventually(async () => (await proxyStatus(own.socket)).colors.green.release === hostile);
  const status = cli("status", "--config", dir);
  expect(status.code).toBe(0);
  expect(status.out).toContain("release 3.2.0");
  expect(status.out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u202e]/);
  const json = JSON.parse(cli("status", "--json", "--config", dir).out) as { colors: { green: { release: string } } };
  expect(json.colors.green.release).toBe(hostile);
});
