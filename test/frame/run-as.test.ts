/**
 * `keys init` with frame.run_as (decision 79), as root: it hands blue and green's files to the
 * account and nothing else, and never follows a link planted among them.
 */
import { describe, expect, test } from "bun:test";
import { lstatSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { lookupAccount } from "../../src/lib/account.ts";
import { writeSecretFile } from "../../src/lib/secret-file.ts";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";

const ACCOUNT = "postgres";

describe("keys init with frame.run_as", () => {
  test("gives the account a color's files, keeps root's, and is a no-op the second time", async () => {
    const account = (await lookupAccount(ACCOUNT))!;
    const dir = makeConfigDir({ appliance: { data_dir: tempDir("axe-data"), frame: { run_as: ACCOUNT } } });
    const secrets = join(dir, "secrets");
    writeSecretFile(join(secrets, "restic-local.password"), "root's\n"); // as backup init makes it
    const first = await runCli(["keys", "init", "--config", dir]);
    expect(first.code).toBe(0);
    for (const file of ["master.key", "token.key", "audit.key", "audit-keys.json", "color.key", "frame-app.password"]) {
      const stat = statSync(join(secrets, file));
      expect({ file, uid: stat.uid, mode: stat.mode & 0o777 }).toEqual({ file, uid: account.uid, mode: 0o600 });
    }
    expect(statSync(join(secrets, "restic-local.password")).uid).toBe(0);
    const dirStat = statSync(secrets);
    expect({ uid: dirStat.uid, gid: dirStat.gid, mode: dirStat.mode & 0o777 }).toEqual({
      uid: 0,
      gid: account.gid,
      mode: 0o710,
    });
    const again = await runCli(["keys", "init", "--config", dir]);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain("gave");
    expect(again.stdout).not.toMatch(/^created/m);
  });

  test("a link planted where a color's file goes is refused, and what it points at stays root's", async () => {
    const dir = makeConfigDir({ appliance: { data_dir: tempDir("axe-data"), frame: { run_as: ACCOUNT } } });
    const secrets = join(dir, "secrets");
    const target = join(tempDir("axe-target"), "root-only");
    writeSecretFile(target, "root's alone\n");
    writeSecretFile(join(secrets, "restic-local.password"), "root's\n");
    symlinkSync(target, join(secrets, "frame-app.password"));
    const run = await runCli(["keys", "init", "--config", dir]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(
      `${join(secrets, "frame-app.password")} is a symbolic link; it is not handed to postgres`,
    );
    expect(statSync(target).uid).toBe(0);
    expect(lstatSync(join(secrets, "frame-app.password")).isSymbolicLink()).toBe(true);
  });
});
