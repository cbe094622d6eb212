/** `status --serve` answers this machine only: a DNS-rebinding page must not read the report (issue 12 item 4). */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { socketProxySource } from "../../src/status/proxy-source.ts";
import { serveStatusPage } from "../../src/status/serve.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";

test("the status page refuses a foreign Host or Origin with 403 and serves loopback names", async () => {
  const config = loadConfig({ dir: makeConfigDir() });
  const server = serveStatusPage(config, socketProxySource(join(tempDir("axe-nosock"), "proxy.sock")), 0);
  try {
    const get = (path: string, headers: Record<string, string>) =>
      fetch(`http://127.0.0.1:${server.port}${path}`, { headers });
    const foreign: Array<Record<string, string>> = [
      { host: "evil.example" },
      { host: "rebind.example:8080" },
      { origin: "https://evil.example" },
    ];
    for (const headers of foreign) {
      const refused = await get("/status.json", headers);
      expect(refused.status).toBe(403);
      expect(await refused.text()).toContain("Forbidden");
    }
    // Past the guard: an unknown path is the page's own 404, for every loopback name.
    for (const host of ["localhost:9", "127.0.0.1", "[::1]:8080"])
      expect((await get("/nothing", { host })).status).toBe(404);
    expect((await get("/nothing", { origin: "http://localhost:3000" })).status).toBe(404);
  } finally {
    await server.stop(true);
  }
});
