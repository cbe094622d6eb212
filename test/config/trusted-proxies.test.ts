/**
 * `proxy.trusted_proxies` names the peers whose X-Forwarded-* and X-Request-Id the proxy believes
 * (and, through the proxy's stamp, frame's audit rows). Every local account connects from a loopback
 * address too, so a loopback entry would let any of them choose the source and request id that
 * frame records: the proxy ignores it and warns. It is not refused at load: an older runbook showed
 * one, and a refused appliance.yaml would stop every command after an upgrade (deploys, backups).
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.ts";
import { proxySettings } from "../../src/proxy/settings.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { proxyConfigDir, spawnProxy, stopAll } from "../proxy/harness.ts";

function load(trusted: string[]) {
  const dir = makeConfigDir();
  writeFileSync(join(dir, "appliance.yaml"), stringify({ customer: "axe", proxy: { trusted_proxies: trusted } }));
  try {
    return loadConfig({ dir });
  } catch (error) {
    return error as Error;
  }
}

describe("proxy.trusted_proxies", () => {
  test("a loopback address, which every local account shares, loads but is never believed", () => {
    for (const address of ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1", "localhost", "0:0:0:0:0:0:0:1"]) {
      const config = load(["10.0.0.5", address]);
      expect(config).not.toBeInstanceOf(Error);
      const settings = proxySettings(config as Exclude<typeof config, Error>);
      expect([...settings.trustedProxies]).toEqual(["10.0.0.5"]);
      expect(settings.ignoredTrustedProxies).toEqual([address]);
    }
  });

  test("another host's address still loads and is trusted", () => {
    const config = load(["10.0.0.5", "fd7a:115c:a1e0::1"]);
    expect(config).not.toBeInstanceOf(Error);
    const settings = proxySettings(config as Exclude<typeof config, Error>);
    expect([...settings.trustedProxies]).toContain("10.0.0.5");
  });

  test("the proxy says so when it starts, naming what it ignores", async () => {
    const dir = proxyConfigDir("http://127.0.0.1:9", "http://127.0.0.1:9", {
      trusted_proxies: ["127.0.0.1", "10.0.0.5"],
    });
    const proxy = await spawnProxy(dir);
    try {
      const warning = proxy
        .stderr()
        .split("\n")
        .find((line) => line.includes("trusted_proxies"));
      expect(JSON.parse(warning!)).toMatchObject({ level: "warn", ignored: ["127.0.0.1"] });
    } finally {
      await stopAll();
    }
  });
});
