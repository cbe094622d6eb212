/**
 * The embedded default, as install.sh sets a machine up: no database.url, so the cluster under
 * data_dir is started by whichever process needs it first, usually a color. Deploys restart the
 * colors in turn, so one of them restarts the color that started Postgres while the other is live.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, openDatabase } from "../../src/db/connect.ts";
import { colorUrl } from "../../src/deploy/switch.ts";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { type ApplianceUnderTest, receiveRelease, startAppliance, startLoad } from "./appliance.ts";

let app: ApplianceUnderTest;

beforeAll(async () => {
  app = await startAppliance({ embedded: true });
}, 120_000); // the first appliance a worker starts compiles the binary

afterAll(async () => {
  await app?.stop();
});

const deploy = async (version: string) => expect((await receiveRelease(app, version)).code).toBe(0);

describe("deploy receive on the embedded default", () => {
  test("restarting the color that started Postgres, while the other is live, fails no request", async () => {
    await deploy("3.0.0-a"); // green goes live; it started the cluster (the migrate step's own start ended with it)
    expect((await proxyStatus(app.socket)).live).toBe("green");
    const db = await openDatabase(app.config); // running: ours only to ask, never to stop
    expect(db.embedded?.startedHere).toBe(false);
    const sql = connect(db.target, { max: 1 });
    try {
      // two deploys under load: the first restarts blue, the second green, whichever started Postgres
      for (const [version, live] of [
        ["3.0.0-b", "blue"],
        ["3.0.0-c", "green"],
      ] as const) {
        const load = await startLoad(app, 4, { sql, tool: "list_collections" }); // each call asks the database
        await load.answered(10);
        await deploy(version);
        await load.answered(10);
        const during = await load.stop();
        expect(during.failures).toEqual([]);
        expect(during.ok).toBeGreaterThan(0);
        expect((await proxyStatus(app.socket)).live).toBe(live);
        for (const color of ["blue", "green"] as const) {
          const health = (await (await fetch(`${colorUrl(app.config, color)}/healthz`)).json()) as {
            database: { reachable: boolean };
          };
          expect(health.database.reachable).toBe(true); // the standby still has its database too
        }
      }
    } finally {
      await sql.end();
    }
  }, 300_000);
});
