/**
 * customers.yaml changes reach a running serve on SIGHUP (issue 21 item 7): a new entity's token
 * is refused before and served after, without a restart; a file that does not load keeps the
 * running configuration and the log says why. The real CLI process, the real signal.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { parse, stringify } from "yaml";
import { loadConfig } from "../../src/config/load.ts";
import { issueServiceToken } from "../../src/frame/auth/service-tokens.ts";
import { MAIN } from "../helpers/cli.ts";
import { makeConfigDir, TEST_CUSTOMERS } from "../helpers/config.ts";
import { freePort } from "../helpers/ports.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { waitFor } from "../helpers/wait.ts";
import { json, rpc } from "./harness.ts";

let child: Subprocess<"ignore", "pipe", "pipe"> | undefined;
let db: TestDatabase | undefined;
afterEach(async () => {
  child?.kill("SIGTERM");
  await child?.exited;
  await db?.drop();
  child = db = undefined;
});

/** customers.yaml of the test fleet with the axe customer's entities replaced. */
function withEntities(entities: unknown[]) {
  const [axe, other] = TEST_CUSTOMERS.customers;
  return { ...TEST_CUSTOMERS, customers: [{ ...axe, entities }, other] };
}
const BASE_ENTITIES = [
  { name: "axe", domains: ["axellc.com"] },
  { name: "labs", domains: ["axe-labs.dev"] },
];

/** serve's stderr, read as it comes; `waitFor` resolves when a line matches (bounded). */
function stderrLines(process: Subprocess<"ignore", "pipe", "pipe">) {
  let text = "";
  const reader = process.stderr.getReader();
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += new TextDecoder().decode(value);
    }
  })();
  const wait = async (pattern: RegExp, after = 0): Promise<string> =>
    waitFor(
      `serve to log ${pattern}`,
      () =>
        text
          .slice(after)
          .split("\n")
          .find((l) => pattern.test(l)),
      { intervalMs: 50 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${text.slice(-2000)}`);
    });
  /** How much has been read so far: pass it as `after` to wait for a line logged from now on. */
  return Object.assign(wait, { mark: () => text.length });
}

describe("serve reads customers.yaml again on SIGHUP", () => {
  test("a new entity's token works after SIGHUP without a restart; a broken file keeps the old configuration", async () => {
    db = await freshDatabase("reload");
    const port = await freePort();
    const dir = makeConfigDir({
      database: db.target,
      customers: withEntities(BASE_ENTITIES),
      appliance: { frame: { public_url: `http://127.0.0.1:${port}`, allowed_origins: ["https://tools.example.com"] } },
    });
    child = Bun.spawn([process.execPath, MAIN, "serve", "--color", "blue", "--port", String(port), "--config", dir], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, AXE_CONFIG_DIR: "" },
    });
    const logged = stderrLines(child);
    await logged(/"frame listening"/);
    const url = `http://127.0.0.1:${port}/frame/mcp`;
    const whoami = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } };
    const listing = {
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "list_collections", arguments: {} },
    };

    // The operator adds an entity and issues its token while serve runs.
    writeFileSync(join(dir, "customers.yaml"), stringify(withEntities([...BASE_ENTITIES, { name: "ops" }])));
    const { token } = await issueServiceToken(db.sql, loadConfig({ dir }).paths.secrets, {
      customer: "axe",
      entity: "ops",
      role: "reader",
      name: "ops-reader",
      expiresInMs: 600_000,
    });
    const bearer = { authorization: `Bearer ${token}` };
    const before = await rpc(url, whoami, bearer);
    expect(before.status).toBe(401);
    expect((await json(before)).reason).toBe("service_token_elsewhere");

    child.kill("SIGHUP");
    expect(await logged(/"configuration reloaded"/)).toContain('"ops"');
    const after = await rpc(url, whoami, bearer);
    expect(after.status).toBe(200);
    expect((await json(after)).result.structuredContent).toMatchObject({ entity: "ops", role: "reader" });
    const collections = await json(await rpc(url, listing, bearer));
    expect(collections.result.isError).toBeUndefined();
    expect(collections.result.structuredContent).toEqual({ collections: [] });

    // The operator withdraws an allowed origin: after SIGHUP the guard refuses it (it kept the old list).
    const fromTools = { ...bearer, origin: "https://tools.example.com" };
    expect((await rpc(url, whoami, fromTools)).status).toBe(200);
    const appliance = parse(readFileSync(join(dir, "appliance.yaml"), "utf8"));
    appliance.frame.allowed_origins = [];
    writeFileSync(join(dir, "appliance.yaml"), stringify(appliance));
    const mark = logged.mark();
    child.kill("SIGHUP");
    await logged(/"configuration reloaded"/, mark);
    expect((await rpc(url, whoami, fromTools)).status).toBe(403);
    expect((await rpc(url, whoami, bearer)).status).toBe(200);

    // A broken file: logged with its reason, the running configuration (ops included) stays.
    writeFileSync(join(dir, "customers.yaml"), "customers:\n  - name: axe\n    domains: [not a domain]\n");
    child.kill("SIGHUP");
    expect(await logged(/configuration not reloaded/)).toContain("customers.yaml");
    expect((await rpc(url, whoami, bearer)).status).toBe(200);
    expect(child.exitCode).toBeNull();
  }, 120_000);
});
