/**
 * `proxy.trusted_proxies` names the peers whose X-Forwarded-* and X-Request-Id the proxy believes
 * (and, through the proxy's stamp, frame's audit rows). Every local account connects from a loopback
 * address too, so a loopback entry would let any of them choose the source and request id that
 * frame records: it is refused at load, naming the key.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/lib/errors.ts";
import { proxySettings } from "../../src/proxy/settings.ts";
import { makeConfigDir } from "../helpers/config.ts";

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
  test("a loopback address, which every local account shares, is refused naming the key", () => {
    for (const address of ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1", "localhost", "0:0:0:0:0:0:0:1"]) {
      const error = load(["10.0.0.5", address]);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain("proxy.trusted_proxies");
      expect((error as Error).message).toContain("local account");
    }
  });

  test("another host's address still loads and is trusted", () => {
    const config = load(["10.0.0.5", "fd7a:115c:a1e0::1"]);
    expect(config).not.toBeInstanceOf(Error);
    const settings = proxySettings(config as Exclude<typeof config, Error>);
    expect([...settings.trustedProxies]).toContain("10.0.0.5");
  });
});
