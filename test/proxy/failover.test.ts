/**
 * Bad days for a color: kill -9 of the live one, a degraded /healthz, a hung upstream. The
 * proxy notices, answers fast with JSON, refuses to switch to a sick color, and a restart keeps
 * the live color.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ProxyError } from "../../src/lib/errors.ts";
import { proxyStatus, switchLiveColor } from "../../src/proxy/admin-client.ts";
import { tempDir } from "../helpers/tmp.ts";
import {
  eventually,
  type InProcessProxy,
  proxyConfigDir,
  startProxy,
  startUpstream,
  stopAll,
  type Upstream,
} from "./harness.ts";

afterAll(stopAll);

const toolsCall = JSON.stringify({
  jsonrpc: "2.0",
  id: 7,
  method: "tools/call",
  params: { name: "whoami", arguments: {} },
});
const toolsList = JSON.stringify({ jsonrpc: "2.0", id: 8, method: "tools/list" });
const post = (url: string, body: string) =>
  fetch(url, { method: "POST", body, headers: { "content-type": "application/json" } });

describe("kill -9 of the live color", () => {
  let blue: Upstream;
  let green: Upstream;
  let configDir: string;
  let proxy: InProcessProxy;

  beforeAll(async () => {
    [blue, green] = await Promise.all([startUpstream("blue"), startUpstream("green")]);
    configDir = proxyConfigDir(blue, green);
    proxy = await startProxy(configDir);
  });

  test("a refused connect marks it down at once, and every request, tools/call too, goes to the healthy color", async () => {
    expect((await fetch(`${proxy.url}/frame/small`)).headers.get("x-color")).toBe("blue");
    blue.process.kill("SIGKILL");
    await blue.process.exited;
    // a safe request is retried on the healthy other color
    const retried = await fetch(`${proxy.url}/frame/small`);
    expect(retried.status).toBe(200);
    expect(retried.headers.get("x-color")).toBe("green");
    // the refused connect told the health check: down now, not after unhealthy_threshold probes
    const status = await proxyStatus(proxy.socket);
    expect(status.colors.blue.healthy).toBe(false);
    expect(status.colors.blue.last_error).toBe("ECONNREFUSED");
    // a refused connect sent nothing, so even a tools/call goes to the healthy color instead of a 502
    const called = await post(`${proxy.url}/frame/mcp`, toolsCall);
    expect(called.status).toBe(200);
    expect(((await called.json()) as { result: { color: string } }).result.color).toBe("green");
    const listed = await post(`${proxy.url}/frame/mcp`, toolsList);
    expect(((await listed.json()) as { result: { color: string } }).result.color).toBe("green");
    expect(status.live).toBe("blue");
    expect(status.colors.green.healthy).toBe(true);
    expect(await (await fetch(`${proxy.url}/healthz`)).json()).toMatchObject({ service: "axe-proxy" });
  });

  test("a switch to the dead color is refused; to the healthy one it works", async () => {
    await switchLiveColor(proxy.socket, "green");
    const refused = await switchLiveColor(proxy.socket, "blue").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ProxyError);
    expect((refused as ProxyError).code).toBe("PROXY_COLOR_UNHEALTHY");
    expect((refused as ProxyError).exitCode).toBe(9);
    expect((await proxyStatus(proxy.socket)).live).toBe("green");
  });

  test("a restarted proxy keeps the live color and re-checks health", async () => {
    await proxy.server.stop();
    const again = await startProxy(configDir);
    const status = await proxyStatus(again.socket);
    expect(status.live).toBe("green");
    expect(status.colors.blue.healthy).toBe(false);
    expect(status.colors.green.healthy).toBe(true);
    expect((await fetch(`${again.url}/frame/small`)).headers.get("x-color")).toBe("green");
  });
});

describe("a degraded color and a hung one", () => {
  let dir: string;
  let proxy: InProcessProxy;

  beforeAll(async () => {
    dir = tempDir("axe-health");
    const [blue, green] = await Promise.all([
      startUpstream("blue"),
      startUpstream("green", { HEALTH_FILE: join(dir, "sick") }),
    ]);
    writeFileSync(join(dir, "sick"), "");
    proxy = await startProxy(proxyConfigDir(blue, green, { header_timeout_ms: 300 }));
  });

  test("a 503 /healthz makes the color unhealthy, and it recovers after healthy_threshold good answers", async () => {
    await eventually(async () => !(await proxyStatus(proxy.socket)).colors.green.healthy);
    expect(((await switchLiveColor(proxy.socket, "green").catch((e: ProxyError) => e)) as ProxyError).code).toBe(
      "PROXY_COLOR_UNHEALTHY",
    );
    rmSync(join(dir, "sick"));
    await eventually(async () => (await proxyStatus(proxy.socket)).colors.green.healthy);
    expect((await switchLiveColor(proxy.socket, "green")).live).toBe("green");
  });

  test("an upstream that does not answer in header_timeout_ms is a 504 with JSON", async () => {
    const response = await fetch(`${proxy.url}/frame/slow?ms=3000`);
    expect(response.status).toBe(504);
    expect(((await response.json()) as { error: string }).error).toBe("upstream_timeout");
  });
});
