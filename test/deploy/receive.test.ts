import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readColors } from "../../src/deploy/colors.ts";
import { deployHistory } from "../../src/deploy/history.ts";
import { colorUrl } from "../../src/deploy/switch.ts";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import {
  type ApplianceUnderTest,
  healthOf,
  releaseStreamFile,
  runAppliance,
  startAppliance,
  startLoad,
} from "./appliance.ts";
import { makeRelease } from "./fixtures.ts";

let app: ApplianceUnderTest;

beforeAll(async () => {
  app = await startAppliance();
}, 120_000); // the first appliance a worker starts compiles the binary: seconds alone, a minute under load

afterAll(async () => {
  await app?.stop();
});

function stepNames(report: { steps: Array<{ step: string; ok: boolean }> } | undefined) {
  return report?.steps.map((s) => `${s.step}:${s.ok ? "ok" : "FAILED"}`);
}

describe("deploy receive, end to end", () => {
  test("first release goes to the passive color and live; a second deploy under load fails no request; rollback flips back", async () => {
    const first = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("1.0.0-a"))).done;
    if (first.code !== 0) console.error(first.stdout, first.stderr);
    expect(first.code).toBe(0);
    expect(stepNames(first.report)).toEqual([
      "verify:ok",
      "lock:ok",
      "install:ok",
      "version:ok",
      "migrate:ok",
      "start:ok",
      "health:ok",
      "mcp:ok",
      "switch:ok",
      "drain:ok",
      "standby:ok",
      "prune:ok",
    ]);
    expect(first.report!.who).toBe("operator@test");
    expect((await proxyStatus(app.socket)).live).toBe("green");

    const load = await startLoad(app);
    await load.answered(10); // the load runs before the deploy starts, and on after it ends
    const second = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("1.0.0-b"))).done;
    await load.answered(10);
    const during = await load.stop();
    if (second.code !== 0) console.error(second.stdout, second.stderr);
    expect(second.code).toBe(0);
    console.log(
      `deploy under load: ${during.ok} requests ok, ${during.failed} failed; receive-to-switch ${second.report!.receiveToSwitchMs} ms, total ${second.report!.totalMs} ms`,
    );
    expect(during.failures).toEqual([]);
    expect(during.ok).toBeGreaterThan(0);
    expect((await proxyStatus(app.socket)).live).toBe("blue");
    expect(await healthOf(colorUrl(app.config, "blue"))).toMatchObject({ color: "blue", release: "1.0.0-b" });
    // the old color still runs, warm, on the old release
    expect(await healthOf(colorUrl(app.config, "green"))).toMatchObject({ color: "green", release: "1.0.0-a" });
    expect(readColors(app.config.paths.data)).toMatchObject({
      blue: { version: "1.0.0-b" },
      green: { version: "1.0.0-a" },
    });

    const load2 = await startLoad(app);
    await load2.answered(10);
    const back = await runAppliance(app, ["deploy", "rollback", "--json"]).done;
    await load2.answered(10);
    const duringRollback = await load2.stop();
    if (back.code !== 0) console.error(back.stdout, back.stderr);
    expect(back.code).toBe(0);
    console.log(
      `rollback under load: ${duringRollback.ok} requests ok, ${duringRollback.failed} failed; total ${back.report!.totalMs} ms`,
    );
    expect(duringRollback.failures).toEqual([]);
    expect((await proxyStatus(app.socket)).live).toBe("green");
    expect(await healthOf(colorUrl(app.config, "blue"))).toMatchObject({ release: "1.0.0-b" }); // still warm
    const status = await runAppliance(app, ["deploy", "status"]).done;
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^blue {3}standby {2}release 1\.0\.0-b {2}healthy$/m);
    expect(status.stdout).toMatch(/^green {2}live {5}release 1\.0\.0-a {2}healthy$/m);
    const listed = await runAppliance(app, ["deploy", "history"]).done;
    expect(
      listed.stdout
        .trim()
        .split("\n")
        .map((l) =>
          l
            .split(/\s{2,}/)
            .slice(1, 3)
            .join(" "),
        ),
    ).toEqual(["deploy 1.0.0-a", "deploy 1.0.0-b", "rollback 1.0.0-a"]);
    const history = deployHistory(app.config);
    expect(history.map((h) => [h.action, h.release, h.ok])).toEqual([
      ["deploy", "1.0.0-a", true],
      ["deploy", "1.0.0-b", true],
      ["rollback", "1.0.0-a", true],
    ]);
  }, 180_000);
});
