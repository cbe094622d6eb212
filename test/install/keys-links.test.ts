/**
 * install.sh runs as root and writes the deploy key's forced command into an account's
 * authorized_keys. That account can plant links in its own home; root must never write through
 * them (a link to root's authorized_keys would give the deploy key a root login). The postgres
 * account stands in for the deploy user: it owns the home, and plants each link as itself.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { asPostgres, asRoot, postgresAccount } from "../helpers/accounts.ts";
import { freePort } from "../helpers/ports.ts";
import { tempDir } from "../helpers/tmp.ts";
import { fleetFile, modeOf, release, runInstall } from "./harness.ts";

const account = postgresAccount;

const OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyStays other@host";
const DEPLOY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk5b3dUeXBlS2V5Rm9yVGVzdHNPbmx5MDEyMzQ1Njc4 operator@laptop";

describe.skipIf(!asRoot || !account)("install.sh as root: the deploy user's .ssh and authorized_keys", () => {
  let fleet: string;
  let ports: string[];
  let deployKey: string;

  beforeAll(async () => {
    release();
    fleet = fleetFile();
    ports = ["--proxy-port", String(await freePort()), "--blue-port", String(await freePort())];
    ports.push("--green-port", String(await freePort()));
    deployKey = join(tempDir("axe-inst-key"), "deploy.pub");
    writeFileSync(deployKey, `${DEPLOY_KEY}\n`);
  }, 180_000);

  /** A home directory that belongs to the deploy user (postgres here), as on a real machine. */
  function home(): string {
    const dir = join(tempDir("axe-inst-home"), "home");
    mkdirSync(dir, { mode: 0o755 });
    chownSync(dir, account!.uid, account!.gid);
    return dir;
  }

  /** Root's own authorized_keys (0600), the file a planted link would have root overwrite. */
  function rootKeys(): { dir: string; file: string; check(): void } {
    const dir = tempDir("axe-inst-rootssh");
    const file = join(dir, "authorized_keys");
    writeFileSync(file, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRootsOwnKey root@machine\n", { mode: 0o600 });
    return {
      dir,
      file,
      check() {
        const stat = lstatSync(file);
        expect({ uid: stat.uid, mode: modeOf(file), content: readFileSync(file, "utf8"), links: stat.nlink }).toEqual({
          uid: 0,
          mode: "600",
          content: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRootsOwnKey root@machine\n",
          links: stat.nlink,
        });
      },
    };
  }

  const install = (prefix: string, keys: string) =>
    runInstall([
      "--prefix",
      prefix,
      "--no-services",
      "--customer",
      "axe",
      "--customers",
      fleet,
      "--binary",
      release().binary,
      ...ports,
      "--deploy-user",
      "postgres",
      "--deploy-key",
      deployKey,
      "--authorized-keys",
      keys,
    ]);

  test("a .ssh that is a link to root's .ssh is refused before anything is installed; root's file is untouched", async () => {
    const h = home();
    const root = rootKeys();
    asPostgres('ln -s "$2" "$1/.ssh"', h, root.dir);
    const prefix = join(tempDir("axe-inst"), "axe");
    const run = await install(prefix, join(h, ".ssh/authorized_keys"));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${h}/.ssh is a symbolic link`);
    root.check();
    expect(existsSync(prefix)).toBe(false);
  }, 60_000);

  test("an authorized_keys that is a link (to root's file, or to a file not there yet) is refused; nothing is written through it", async () => {
    const root = rootKeys();
    for (const target of [root.file, join(root.dir, "created-by-root")]) {
      const h = home();
      asPostgres('mkdir -m 700 "$1/.ssh" && ln -s "$2" "$1/.ssh/authorized_keys"', h, target);
      const run = await install(join(tempDir("axe-inst"), "axe"), join(h, ".ssh/authorized_keys"));
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`${h}/.ssh/authorized_keys is a symbolic link`);
      root.check();
      expect(existsSync(join(root.dir, "created-by-root"))).toBe(false);
    }
  }, 60_000);

  test("an authorized_keys that is a second name (hard link) of root's file is refused; the file is untouched", async () => {
    const h = home();
    const root = rootKeys();
    asPostgres('mkdir -m 700 "$1/.ssh"', h);
    linkSync(root.file, join(h, ".ssh/authorized_keys")); // what macOS lets any account do to a file it can see
    const run = await install(join(tempDir("axe-inst"), "axe"), join(h, ".ssh/authorized_keys"));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${h}/.ssh/authorized_keys has 2 names`);
    root.check();
  }, 60_000);

  test("a real .ssh: the forced command is written as the deploy user (its file, 0600), other keys kept; uninstall removes it the same way", async () => {
    const h = home();
    asPostgres('mkdir -m 700 "$1/.ssh" && printf "%s\\n" "$2" > "$1/.ssh/authorized_keys"', h, OTHER_KEY);
    const keys = join(h, ".ssh/authorized_keys");
    const prefix = join(tempDir("axe-inst"), "axe");
    const run = await install(prefix, keys);
    if (run.code !== 0) console.error(run.stdout, run.stderr);
    expect(run.code).toBe(0);
    const lines = readFileSync(keys, "utf8").trimEnd().split("\n");
    expect(lines[0]).toBe(OTHER_KEY);
    expect(lines[1]).toStartWith(`restrict,command="${prefix}/bin/axe-appliance deploy receive`);
    expect(run.stderr).toContain("the receiver will run as postgres without sudo"); // --no-services: no sudoers rule
    expect(lines.length).toBe(2);
    expect({ uid: lstatSync(keys).uid, mode: modeOf(keys) }).toEqual({ uid: account!.uid, mode: "600" });

    const fresh = home(); // no .ssh yet: the deploy user makes it, 0700
    const made = join(fresh, ".ssh/authorized_keys");
    expect((await install(prefix, made)).code).toBe(0);
    expect({ uid: lstatSync(join(fresh, ".ssh")).uid, mode: modeOf(join(fresh, ".ssh")) }).toEqual({
      uid: account!.uid,
      mode: "700",
    });
    expect(lstatSync(made).uid).toBe(account!.uid);

    const uninstall = await runInstall(["--prefix", prefix, "--no-services", "--uninstall", "--authorized-keys", keys]);
    expect(uninstall.code).toBe(0);
    expect(readFileSync(keys, "utf8")).toBe(`${OTHER_KEY}\n`);
    expect(lstatSync(keys).uid).toBe(account!.uid);
  }, 180_000);
});
