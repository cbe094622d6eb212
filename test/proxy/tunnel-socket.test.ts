/**
 * The tunnel's own door: a Unix socket only root may use (decision 76). While the proxy is stopped,
 * any local account can listen on 127.0.0.1:3712 and receive what the tunnel sends, every caller's
 * Bearer token; nobody but root can make a socket in the proxy's 0700 run directory.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { ProxyError } from "../../src/lib/errors.ts";
import { proxySettings } from "../../src/proxy/settings.ts";
import { asPostgres, asRoot, postgresAccount } from "../helpers/accounts.ts";
import { tempDir } from "../helpers/tmp.ts";
import { proxyConfigDir, spawnProxy, startProxy, startUpstream, stopAll } from "./harness.ts";

afterAll(stopAll);

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

/** What the upstream saw of a request sent with the tunnel's headers, through `via`. */
async function echo(url: string, via: { unix?: string } = {}) {
  const response = await fetch(`${url}/frame/echo`, {
    ...via,
    headers: { "x-forwarded-for": "203.0.113.7", "x-request-id": "tunnel-chosen-id", "x-forwarded-proto": "https" },
    signal: AbortSignal.timeout(10_000),
  });
  return ((await response.json()) as { headers: Record<string, string> }).headers;
}

describe("the tunnel's Unix socket", () => {
  test("is root's alone (0600 in a 0700 directory), and what the tunnel says of its caller is believed there, not on :3712", async () => {
    const [blue, green] = await Promise.all([startUpstream("blue"), startUpstream("green")]);
    const proxy = await startProxy(proxyConfigDir(blue, green));
    const socket = proxy.settings.tunnelSocket!;
    expect(lstatSync(socket).isSocket()).toBe(true);
    expect(mode(socket)).toBe("600");
    expect(mode(dirname(socket))).toBe("700");

    const tunnel = await echo("http://localhost", { unix: socket });
    expect(tunnel["x-forwarded-for"]).toBe("203.0.113.7, unix");
    expect(tunnel["x-request-id"]).toBe("tunnel-chosen-id");
    expect(tunnel["x-forwarded-proto"]).toBe("https");
    const local = await echo(proxy.url); // any local account, from loopback
    expect(local["x-forwarded-for"]).toBe("127.0.0.1");
    expect(local["x-request-id"]).not.toBe("tunnel-chosen-id");
    expect(local["x-forwarded-proto"]).toBe("http");
  });

  test("a socket left by a proxy that crashed is replaced; a link or file planted at its path is refused, never followed", async () => {
    const dir = proxyConfigDir("http://127.0.0.1:9", "http://127.0.0.1:9");
    const crashed = await spawnProxy(dir);
    crashed.process.kill("SIGKILL");
    await crashed.process.exited;
    const socket = proxySettings(loadConfig({ dir })).tunnelSocket!;
    expect(lstatSync(socket).isSocket()).toBe(true); // left behind
    const again = await startProxy(dir);
    const healthz = await fetch("http://localhost/healthz", { unix: socket }); // the proxy's own answer
    expect(await healthz.json()).toMatchObject({ service: "axe-proxy" });
    await again.server.stop();

    const target = join(tempDir("axe-target"), "victim");
    writeFileSync(target, "untouched\n");
    for (const plant of [() => symlinkSync(target, socket), () => writeFileSync(socket, "a file\n")]) {
      // as root would find it: whoever planted it is gone
      await Bun.$`rm -f ${socket}`.quiet();
      plant();
      const error = await startProxy(dir).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error).toBeInstanceOf(ProxyError);
      expect((error as ProxyError).code).toBe("PROXY_SOCKET_PATH");
      expect(readFileSync(target, "utf8")).toBe("untouched\n");
      expect(existsSync(socket)).toBe(true);
    }
  });

  test("can be turned off", () => {
    const config = loadConfig({
      dir: proxyConfigDir("http://127.0.0.1:9", "http://127.0.0.1:9", { tunnel_socket: "off" }),
    });
    expect(proxySettings(config).tunnelSocket).toBeUndefined();
  });

  test.if(asRoot && postgresAccount !== undefined)(
    "while the proxy is stopped, another account cannot make a socket at its path (it can take :3712)",
    async () => {
      const dir = proxyConfigDir("http://127.0.0.1:9", "http://127.0.0.1:9");
      const proxy = await startProxy(dir);
      const socket = proxy.settings.tunnelSocket!;
      await proxy.server.stop();
      await Bun.$`rm -f ${socket}`.quiet();
      expect(() => asPostgres('touch "$1"', socket)).toThrow(/Permission denied/);
      expect(() => asPostgres('ln -s /tmp "$1"', socket)).toThrow(/Permission denied/);
      expect(existsSync(socket)).toBe(false);
    },
  );
});
