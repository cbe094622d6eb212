/** No test takes a fixed port: the config helper binds nothing fixed, and a held port is really held. */
import { describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { loadConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/lib/log.ts";
import { ProxyServer } from "../../src/proxy/proxy-server.ts";
import { proxySettings } from "../../src/proxy/settings.ts";
import { makeConfigDir } from "./config.ts";
import { freePort, holdPorts } from "./ports.ts";

describe("test ports", () => {
  test("a test config's proxy serves no TCP /metrics unless the test asks (the default 127.0.0.1:3714 is anyone's)", async () => {
    const config = loadConfig({ dir: makeConfigDir({ appliance: { proxy: { listen: "127.0.0.1:0" } } }) });
    expect(proxySettings(config).metricsListen).toBeUndefined();
    const proxy = new ProxyServer(proxySettings(config), { log: createLogger({ level: "error" }) });
    await proxy.start();
    try {
      expect(proxy.metricsPort).toBeUndefined();
    } finally {
      await proxy.stop();
    }
    const asked = loadConfig({ dir: makeConfigDir({ appliance: { proxy: { metrics_listen: "127.0.0.1:0" } } }) });
    expect(proxySettings(asked).metricsListen).toEqual({ hostname: "127.0.0.1", port: 0 });
  });

  test("holdPorts holds each port of its spec until let go, and a connection there is closed at once", async () => {
    const [a, b] = [await freePort(), await freePort()];
    const release = holdPorts(`${a},${b}-${b}`);
    try {
      for (const port of [a, b])
        expect(() => Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } })).toThrow();
      const closed = await new Promise<boolean>((resolve) => {
        const socket = connect(a, "127.0.0.1");
        socket.on("close", () => resolve(true));
        socket.on("error", () => undefined);
      });
      expect(closed).toBe(true);
    } finally {
      release();
    }
    const again = Bun.listen({ hostname: "127.0.0.1", port: a, socket: { data() {} } });
    again.stop();
  });
});
