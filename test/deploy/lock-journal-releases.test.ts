import { describe, expect, test } from "bun:test";
import { appendFileSync, copyFileSync, existsSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { pointColor, readColors } from "../../src/deploy/colors.ts";
import { deployHistory, renderHistory } from "../../src/deploy/history.ts";
import { DeployJournal } from "../../src/deploy/journal.ts";
import { acquireDeployLock, describeLockStep, inspectDeployLock } from "../../src/deploy/lock.ts";
import { journalFor } from "../../src/deploy/receive.ts";
import { installRelease, listReleases, pruneReleases, stagingPath } from "../../src/deploy/releases.ts";
import { NO_RELEASE_SENT, StepRunner } from "../../src/deploy/steps.ts";
import { DeployError } from "../../src/lib/errors.ts";
import { checkLastDeploy } from "../../src/status/deploy-check.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";
import { raceForStaleLock } from "../lib/fixtures/lock-race.ts";
import { makeRelease } from "./fixtures.ts";

describe("deploy lock", () => {
  test("a second deploy is refused while the first holds the lock, naming the holder", () => {
    const file = join(tempDir("axe-lock"), "run", "deploy.lock");
    const first = acquireDeployLock(file, "alice@laptop", "1.0.0");
    // a live process other than us holds it: our parent (the test runner's own pid is ours)
    writeFileSync(file, JSON.stringify({ pid: process.ppid, startedAt: "t", who: "alice@laptop", version: "1.0.0" }));
    const error = (() => {
      try {
        acquireDeployLock(file, "bob@laptop", "1.0.1");
      } catch (e) {
        return e as DeployError;
      }
    })();
    expect(error).toBeInstanceOf(DeployError);
    expect(error!.code).toBe("DEPLOY_LOCKED");
    expect(error!.message).toContain(`pid ${process.ppid}`);
    expect(error!.message).toContain("alice@laptop");
    first.release(); // not ours any more: must not remove another holder's lock
    expect(existsSync(file)).toBe(true);
  });

  test("a lock left by a dead process is detected, reported and taken over", async () => {
    const file = join(tempDir("axe-lock"), "deploy.lock");
    const dead = Bun.spawn(["true"]);
    await dead.exited;
    writeFileSync(
      file,
      JSON.stringify({ pid: dead.pid, startedAt: "2026-01-01T00:00:00Z", who: "crashed@op", version: "0.9.0" }),
    );
    expect(inspectDeployLock(file)?.alive).toBe(false);
    const lock = acquireDeployLock(file, "bob@laptop", "1.0.1");
    expect(lock.takenOver).toMatchObject({
      pid: dead.pid,
      startedAt: "2026-01-01T00:00:00Z",
      who: "crashed@op",
      detail: "0.9.0",
      alive: false,
    });
    expect(describeLockStep(lock)).toBe(
      `took over a stale lock of dead pid ${dead.pid} (release 0.9.0 by crashed@op, since 2026-01-01T00:00:00Z)`,
    );
    expect(JSON.parse(readFileSync(file, "utf8")).pid).toBe(process.pid);
    lock.release();
    expect(existsSync(file)).toBe(false);
  });
});

describe("deploy lock race (issue 12.6)", () => {
  test("two receivers take over one stale lock, 100 rounds: never two holders", async () => {
    const outcome = await raceForStaleLock("deploy", 2, 100);
    expect(outcome).toEqual({ doubles: [], none: [], unreported: [], leftovers: [] });
  });
});

describe("deploy journal", () => {
  test("appends one JSON line per event and survives a torn last line", () => {
    const journal = new DeployJournal(join(tempDir("axe-journal"), "state", "deploy-journal.jsonl"));
    journal.append({ id: "a", kind: "begin", action: "deploy", who: "op" });
    appendFileSync(journal.file, '{"time":"2026-'); // power loss mid-write
    journal.append({ id: "a", kind: "end", action: "deploy", who: "op", ok: false });
    const entries = journal.read();
    expect(entries.map((e) => e.kind)).toEqual(["begin", "end"]);
    expect(entries[1]!.ok).toBe(false);
    expect(statSync(journal.file).mode & 0o777).toBe(0o600);
  });
});

describe("deploy history", () => {
  test("one row per run when an error spans lines; a run that sent nothing is no failed deploy", async () => {
    const config = loadConfig({ dir: makeConfigDir() });
    const journal = journalFor(config);
    const good = new StepRunner(journal, "deploy", "op");
    good.report.release = "1.0.0";
    await good.step("verify", () => "verified");
    good.finish(true);
    const bad = new StepRunner(journal, "deploy", "op\nsecond line of a key comment");
    bad.report.release = "1.0.1";
    await bad
      .step("migrate", () => {
        throw new Error("db migrate failed:\nERROR:  relation exists\n  at line 3\n");
      })
      .catch(() => undefined);
    bad.finish(false);
    const rows = deployHistory(config);
    const text = renderHistory(rows);
    expect(text.trimEnd().split("\n").length).toBe(2);
    expect(text).toContain("FAILED at migrate: migrate: db migrate failed: / ERROR:  relation exists / at line 3");

    const nothing = new StepRunner(journal, "deploy", "op");
    nothing.report.nothingDone = NO_RELEASE_SENT;
    nothing.finish(false);
    const after = renderHistory(deployHistory(config)).trimEnd().split("\n");
    expect(after.length).toBe(3);
    expect(after[2]).toContain("nothing done: no release sent");
    // status looks past it: the last deploy is still the failed one, not "no release sent"
    expect(checkLastDeploy(config).check.summary).toContain("FAILED at migrate");
  });
});

describe("installed releases", () => {
  test("install is atomic and idempotent, a reused version with another binary is refused, prune keeps the newest and those in use", async () => {
    const data = tempDir("axe-data");
    // installRelease never runs the binary: a small stand-in keeps 9 releases from copying 110 MB each,
    // and its mode 0644 shows that install is what makes it executable
    const standIn = join(tempDir("axe-bin-small"), "axe-appliance");
    writeFileSync(standIn, "#!/bin/sh\necho stand-in\n", { mode: 0o644 });
    const versions = ["1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5", "1.0.6", "1.0.7"];
    for (const [i, version] of versions.entries()) {
      const release = await makeRelease(version, { binary: standIn });
      const staged = stagingPath(data);
      copyFileSync(release.binary, staged);
      expect(statSync(staged).mode & 0o111).toBe(0);
      const installed = installRelease(data, { manifest: release.manifest, jws: release.jws, file: staged });
      expect(statSync(installed.binary).mode & 0o111).not.toBe(0);
      expect(existsSync(staged)).toBe(false);
      // install times a minute apart, in version order, whatever the file system's clock resolution
      const installedAt = new Date(Date.UTC(2026, 0, 1, 12, i));
      utimesSync(join(installed.dir, "manifest.json"), installedAt, installedAt);
    }
    // the same version and binary again: reused, not an error
    const again = await makeRelease("1.0.7", { binary: standIn });
    const staged = stagingPath(data);
    copyFileSync(again.binary, staged);
    expect(installRelease(data, { manifest: again.manifest, jws: again.jws, file: staged }).version).toBe("1.0.7");
    // the same version with a different binary: refused
    const other = join(tempDir("axe-bin2"), "axe-appliance");
    copyFileSync(standIn, other);
    appendFileSync(other, "extra");
    const impostor = await makeRelease("1.0.7", { binary: other });
    const staged2 = stagingPath(data);
    copyFileSync(impostor.binary, staged2);
    expect(() => installRelease(data, { manifest: impostor.manifest, jws: impostor.jws, file: staged2 })).toThrow(
      /already installed with a different binary/,
    );

    pointColor(data, "blue", "1.0.1");
    expect(readColors(data).blue?.version).toBe("1.0.1");
    const removed = pruneReleases(data, 5, ["1.0.1"]);
    expect(removed.sort()).toEqual(["1.0.2"]);
    expect(
      listReleases(data)
        .map((r) => r.version)
        .sort(),
    ).toEqual(["1.0.1", "1.0.3", "1.0.4", "1.0.5", "1.0.6", "1.0.7"]);
  }, 60_000);
});

describe("push progress bar", () => {
  test("draws whole percents on one line and ends with a newline", async () => {
    const { progressBar } = await import("../../src/deploy/push.ts");
    const drawn: string[] = [];
    const bar = progressBar((s) => drawn.push(s));
    const total = 4 * 1_048_576;
    for (const sent of [0, 1_048_576, 1_048_576 + 10, total]) bar(sent, total);
    expect(drawn).toEqual([
      "\r[--------------------]   0%  0.0/4.0 MB",
      "\r[#####---------------]  25%  1.0/4.0 MB",
      "\r[####################] 100%  4.0/4.0 MB\n",
    ]);
  });
});
