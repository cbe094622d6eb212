import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { deployHistory } from "../../src/deploy/history.ts";
import { journalFor } from "../../src/deploy/receive.ts";
import { listReleases } from "../../src/deploy/releases.ts";
import { generateReleaseKeyPair } from "../../src/deploy/sign.ts";
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
  const first = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("2.0.0-a"))).done;
  if (first.code !== 0) throw new Error(`setup deploy failed: ${first.stdout} ${first.stderr}`);
}, 90_000);

afterAll(async () => {
  await app?.stop();
});

const installed = () =>
  listReleases(app.config.paths.data)
    .map((r) => r.version)
    .sort();

async function liveUntouched() {
  expect((await proxyStatus(app.socket)).live).toBe("green");
  expect(await healthOf(colorUrl(app.config, "green"))).toMatchObject({ color: "green", release: "2.0.0-a" });
}

describe("deploy receive refuses before anything runs", () => {
  test("bad signature, wrong key, sha256 mismatch, truncated stream: exit 6, nothing installed, live untouched", async () => {
    const good = await makeRelease("2.0.0-x");
    const stranger = await makeRelease("2.0.0-y", { keys: await generateReleaseKeyPair() });
    const cases: Array<[string, string, string]> = [
      [
        "RELEASE_SIGNATURE",
        releaseStreamFile(good, (b) => {
          const i = 8 + 4 + 200;
          b[i] = b[i]! ^ 1;
          return b;
        }),
        "signature does not match",
      ],
      ["RELEASE_WRONG_KEY", releaseStreamFile(stranger), "signed by key"],
      [
        "RELEASE_SHA256",
        releaseStreamFile(good, (b) => {
          b[b.length - 5000] = b[b.length - 5000]! ^ 0xff;
          return b;
        }),
        "sha256",
      ],
      ["RELEASE_TRUNCATED", releaseStreamFile(good, (b) => b.subarray(0, b.length - 1_000_000)), "ended after"],
    ];
    for (const [code, file, says] of cases) {
      const run = await runAppliance(app, ["deploy", "receive"], file).done;
      expect({ code, exit: run.code, reported: run.report?.error?.code }).toEqual({ code, exit: 6, reported: code });
      expect(run.stderr).toContain(says);
      expect(run.stderr).toContain("nothing was installed or run");
      expect(run.stderr).toContain("failed at step verify");
      expect(run.report!.steps.map((s) => s.step)).toEqual(["verify"]);
    }
    expect(installed()).toEqual(["2.0.0-a"]);
    expect(existsSync(join(app.config.paths.data, "releases", "2.0.0-x"))).toBe(false);
    await liveUntouched();
  }, 120_000);
});

describe("deploy receive failures leave the live color serving", () => {
  test("a release whose health check fails: live untouched under load, journal says why, exit 6", async () => {
    // blue's port is taken, so the new blue cannot listen and exits: its health check never passes
    const blocker = Bun.serve({
      hostname: "127.0.0.1",
      port: app.config.appliance.frame.ports.blue,
      fetch: () => new Response("not frame", { status: 503 }),
    });
    try {
      const load = await startLoad(app);
      const run = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("2.0.0-bad")))
        .done;
      const during = await load.stop();
      expect(run.code).toBe(6);
      expect(run.stderr).toContain("failed at step health");
      expect(run.report!.error).toMatchObject({ step: "health" });
      expect(run.report!.steps.map((s) => `${s.step}:${s.ok}`)).toEqual([
        "verify:true",
        "lock:true",
        "install:true",
        "version:true",
        "migrate:true",
        "start:true",
        "health:false",
        "restore:true",
      ]);
      expect(during.failures).toEqual([]);
      expect(during.ok).toBeGreaterThan(0);
      await liveUntouched();
      const last = deployHistory(app.config).at(-1)!;
      expect(last).toMatchObject({ release: "2.0.0-bad", ok: false, failedStep: "health" });
      expect(last.error).toMatch(/blue (exited while starting|did not report healthy)/);
    } finally {
      blocker.stop(true);
    }
  }, 120_000);

  test("two deploys at once: one goes through, the other refuses clearly at the lock", async () => {
    const [c, d] = [await makeRelease("2.0.0-c"), await makeRelease("2.0.0-d")];
    // The first holds the lock while the second arrives: it is stopped (SIGSTOP) right after its
    // lock step and continued once the second has answered, so the overlap does not depend on
    // how fast a deploy runs (one finished before the other started on a quick machine).
    const journal = journalFor(app.config);
    const before = journal.read().length;
    const one = runAppliance(app, ["deploy", "receive"], releaseStreamFile(c));
    const deadline = Date.now() + 60_000;
    while (
      !journal
        .read()
        .slice(before)
        .some((e) => e.kind === "step" && e.step === "lock")
    ) {
      if (Date.now() > deadline) throw new Error("the first receiver never took the lock");
      await Bun.sleep(5);
    }
    one.child.kill("SIGSTOP");
    let second;
    try {
      second = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(d)).done;
    } finally {
      one.child.kill("SIGCONT");
    }
    const results = [await one.done, second];
    const won = results.filter((r) => r.code === 0);
    const lost = results.filter((r) => r.code !== 0);
    expect(won.length).toBe(1);
    expect(lost.length).toBe(1);
    expect(lost[0]!.code).toBe(6);
    expect(lost[0]!.stderr).toContain("failed at step lock: another deploy is running");
    expect(lost[0]!.report!.steps.map((s) => s.step)).toEqual(["verify", "lock"]);
    expect((await proxyStatus(app.socket)).live).toBe("blue");
    // the refused one's verified copy was not left behind
    expect(readdirSync(join(app.config.paths.data, "releases")).filter((n) => n.startsWith("."))).toEqual([]);
  }, 120_000);

  test("kill -9 of the receiver mid-deploy: the next deploy reports the stale lock and recovers", async () => {
    const journal = journalFor(app.config);
    const before = journal.read().length;
    const victim = runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("2.0.0-e")));
    const deadline = Date.now() + 60_000;
    while (
      !journal
        .read()
        .slice(before)
        .some((e) => e.kind === "step" && e.step === "migrate")
    ) {
      if (Date.now() > deadline) throw new Error("the receiver never reached the migrate step");
      await Bun.sleep(10);
    }
    victim.child.kill("SIGKILL");
    await victim.done;
    const next = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("2.0.0-f"))).done;
    if (next.code !== 0) console.error(next.stdout, next.stderr);
    expect(next.code).toBe(0);
    expect(next.report!.steps.find((s) => s.step === "lock")!.detail).toContain(
      `took over a stale lock of dead pid ${victim.child.pid}`,
    );
    const history = deployHistory(app.config);
    expect(history.find((h) => h.release === "2.0.0-e")!.ok).toBeUndefined(); // interrupted: no end line
    expect(history.at(-1)).toMatchObject({ release: "2.0.0-f", ok: true });
    const live = (await proxyStatus(app.socket)).live;
    expect(await healthOf(colorUrl(app.config, live))).toMatchObject({ release: "2.0.0-f" });
  }, 120_000);
});

describe("deploy receive refuses a downgrade (issue 12 item 8)", () => {
  test("an older signed release is refused unless --allow-downgrade (journaled); rollback is unaffected; a release signed before sequences is refused once a sequenced one went live", async () => {
    const live = async () => {
      const color = (await proxyStatus(app.socket)).live;
      return (await healthOf(colorUrl(app.config, color))).release;
    };
    const newest = await live();
    const older = await makeRelease("1.5.0-old", { sequence: 20200101000000 });
    const refused = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(older)).done;
    expect(refused.code).toBe(6);
    expect(refused.report!.error).toMatchObject({ step: "verify", code: "RELEASE_DOWNGRADE" });
    expect(refused.stderr).toContain(`release 1.5.0-old (sequence 20200101000000) is older than release ${newest}`);
    expect(refused.stderr).toContain("--allow-downgrade");
    expect(installed()).not.toContain("1.5.0-old");
    expect(await live()).toBe(newest);

    const legacy = await makeRelease("1.4.0-legacy", { sequence: "legacy" });
    const legacyRun = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(legacy)).done;
    expect(legacyRun.code).toBe(6);
    expect(legacyRun.report!.error).toMatchObject({ step: "verify", code: "RELEASE_DOWNGRADE" });
    expect(legacyRun.stderr).toContain("signed before release sequences");

    // On the machine itself, from the release directory.
    const allowed = await runAppliance(app, ["deploy", "receive", "--allow-downgrade", "--release", older.dir]).done;
    if (allowed.code !== 0) console.error(allowed.stdout, allowed.stderr);
    expect(allowed.code).toBe(0);
    expect(await live()).toBe("1.5.0-old");
    const verify = deployHistory(app.config).at(-1)!;
    expect(verify).toMatchObject({ release: "1.5.0-old", ok: true });
    const journaled = journalFor(app.config)
      .read()
      .filter((e) => e.kind === "step" && e.step === "verify" && e.release === "1.5.0-old" && e.ok);
    expect(String(journaled.at(-1)?.detail)).toContain("downgrade allowed: sequence 20200101000000 is older than");

    // The newest release is the warm standby now: rollback goes back to it without a flag.
    const back = await runAppliance(app, ["deploy", "rollback"]).done;
    if (back.code !== 0) console.error(back.stdout, back.stderr);
    expect(back.code).toBe(0);
    expect(await live()).toBe(newest);
    // And the floor did not move down: the older release is still refused without the flag.
    const again = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(older)).done;
    expect(again.report!.error).toMatchObject({ step: "verify", code: "RELEASE_DOWNGRADE" });
  }, 180_000);
});
