/**
 * The embedded default, and its cluster goes away under a running color: the disk filled and
 * Postgres stopped, the OOM killer took it, someone ran `db stop` by mistake. Nothing else starts it
 * again on an installed machine (a color starts it only when it starts), so the color does.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { EmbeddedPostgres } from "../../src/db/embedded.ts";
import { type RunningFrame, startFrame } from "../../src/frame/serve.ts";
import { createLogger } from "../../src/lib/log.ts";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";

let frame: RunningFrame | undefined;
afterEach(async () => {
  await frame?.stop();
  frame = undefined;
});

async function databaseReachable(url: string): Promise<boolean> {
  const body = (await (await fetch(`${url}/healthz`)).json()) as { database: { reachable: boolean } };
  return body.database.reachable;
}

describe("a color on the embedded default", () => {
  test("starts the cluster again when it stops under it, and stops it at its own stop when no one else uses it", async () => {
    const data = tempDir("axe-data");
    const dir = makeConfigDir({ appliance: { data_dir: data } });
    const config = loadConfig({ dir });
    frame = await startFrame({
      config,
      color: "blue",
      port: 0,
      logger: createLogger({ level: "error" }),
      embeddedWatchMs: 200,
    });
    expect(await databaseReachable(frame.url)).toBe(true);
    const cluster = await EmbeddedPostgres.open({ dir: join(data, "postgres"), start: false });
    const before = cluster.serverPid()!;
    const verifier = frame.serviceTokens!;
    await waitFor("the service-token listener to subscribe", () => verifier.stats.subscribes > 0);
    const subscribes = verifier.stats.subscribes;

    const stopped = await runCli(["db", "stop", "--config", dir]);
    expect(stopped.stdout).toBe(`stopped the embedded Postgres (pid ${before})\n`);
    const after = await waitFor("the color to start its cluster again", () => {
      const pid = cluster.serverPid();
      return pid !== undefined && pid !== before ? pid : undefined;
    });
    expect(after).not.toBe(before);
    await waitFor("the color's database to answer again", () => databaseReachable(frame!.url), { retryErrors: true });
    // and revocations reach it again: its listen connection subscribed anew (postgres.js tried once, while it was down)
    const t0 = Date.now();
    await waitFor("the service-token listener to subscribe again", () => verifier.stats.subscribes > subscribes, {
      timeoutMs: 60_000,
    });
    await waitFor("the service-token listener to hear its heartbeat", () => verifier.hearing());
    console.log(`resubscribed ${Date.now() - t0} ms after the database answered`);

    await frame.stop();
    frame = undefined;
    expect(cluster.serverPid()).toBeUndefined(); // it started it, and no one else uses it
  }, 120_000);
});
