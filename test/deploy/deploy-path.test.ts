/**
 * A third review of the deploy path (decision 69): what an account that can write into the deploy
 * account's home, or set the environment it calls sudo with, can make the root receiver run
 * without the release key. Real receiver processes and real signed releases.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { journalFor } from "../../src/deploy/receive.ts";
import { tempDir } from "../helpers/tmp.ts";
import { type ApplianceUnderTest, releaseStreamFile, runAppliance, startAppliance } from "./appliance.ts";
import { makeRelease } from "./fixtures.ts";

let app: ApplianceUnderTest;

beforeAll(async () => {
  app = await startAppliance();
  const first = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("9.0.0-a"))).done;
  if (first.code !== 0) throw new Error(`setup deploy failed: ${first.stdout} ${first.stderr}`);
}, 120_000);

afterAll(async () => {
  await app?.stop();
});

describe("the receiver runs only what the release key signed", () => {
  test("not a bunfig.toml preload or a .env in the directory it starts in (the deploy account's home, under sudo)", async () => {
    const home = tempDir("axe-deploy-home");
    const marker = join(home, "ran-as-root");
    const preload = join(home, "evil.js");
    writeFileSync(
      preload,
      `require("node:fs").appendFileSync(${JSON.stringify(marker)}, process.argv.slice(1).join(" ") + "\\n");\n`,
    );
    writeFileSync(join(home, "bunfig.toml"), `preload = [${JSON.stringify(preload)}]\n`);
    writeFileSync(join(home, ".env"), "AXE_DEPLOY_WHO=planted-by-home\n");
    const run = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("9.0.0-b")), {
      cwd: home,
      env: { AXE_DEPLOY_WHO: undefined },
    }).done;
    expect(existsSync(marker) ? readFileSync(marker, "utf8") : "").toBe(""); // neither the receiver nor --version, migrate
    expect(run.report?.ok).toBe(true);
    const last = journalFor(app.config).read().at(-1)!;
    expect(last.who).not.toContain("planted-by-home");
  }, 180_000);
});
