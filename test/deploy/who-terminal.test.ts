/**
 * `deploy history` and `deploy status` run on root's terminal and print what the deploy account
 * gave: the name a receiver is run under ($AXE_DEPLOY_WHO, which sudoers keeps, or --who), in the
 * journal and in the deploy lock. That account (a shell on macOS, where the embedded Postgres runs
 * as it) can run the receiver with any name, so the name must not steer the terminal: erase the
 * line of a failed deploy, retitle the window, write the clipboard.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { lockFileFor } from "../../src/deploy/receive.ts";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";

const ESC = "\x1b";
const WHO = `op${ESC}[2K${ESC}[1A${ESC}]0;all good${ESC}\\${ESC}]52;c;cm0gLXJmIH4=\x07`;

describe("what the deploy account names itself", () => {
  test("reaches deploy history and deploy status without a control character", async () => {
    const dir = makeConfigDir();
    const sent = await runCli(["deploy", "receive", "--config", dir], { env: { AXE_DEPLOY_WHO: WHO }, stdin: "" });
    expect(sent.code).toBe(0); // nothing sent: journaled as such
    const history = await runCli(["deploy", "history", "--config", dir]);
    expect(history.code).toBe(0);
    expect(history.stdout).toContain("op");
    expect(history.stdout).not.toContain(ESC);
    expect(history.stdout).not.toContain("\x07");
    const json = await runCli(["deploy", "history", "--config", dir, "--json"]);
    expect(JSON.parse(json.stdout).at(-1).who).toBe(WHO); // --json keeps it as sent

    // a lock the account's receiver holds (its pid: this test's parent, alive) names it too
    const lock = lockFileFor(loadConfig({ dir }));
    mkdirSync(dirname(lock), { recursive: true });
    writeFileSync(lock, JSON.stringify({ pid: process.ppid, startedAt: "t", who: WHO, version: `9${ESC}[31m` }));
    const status = await runCli(["deploy", "status", "--config", dir]);
    expect(status.stdout).toContain("deploy lock");
    expect(status.stdout).not.toContain(ESC);
    expect(status.stdout).not.toContain("\x07");

    // and the next deploy or rollback, refused while that lock is held, says who holds it
    const rollback = await runCli(["deploy", "rollback", "--config", dir]);
    expect(rollback.code).not.toBe(0);
    const said = rollback.stdout + rollback.stderr;
    expect(said).toContain("another deploy is running");
    expect(said).not.toContain(ESC);
    expect(said).not.toContain("\x07");
  }, 60_000);
});
