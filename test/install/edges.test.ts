import { beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { hostTarget } from "../../build/compile.ts";
import { REPO } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";
import { tempDir } from "../helpers/tmp.ts";
import { fleetFile, INSTALL_SH, modeOf, release, runInstall } from "./harness.ts";

let fleet: string;
let ports: string[];

beforeAll(async () => {
  release();
  fleet = fleetFile();
  ports = [
    "--proxy-port",
    String(await freePort()),
    "--blue-port",
    String(await freePort()),
    "--green-port",
    String(await freePort()),
  ];
}, 180_000);

/** A release bundle as an operator copies it onto a machine: install.sh, the binary, SHA256SUMS, customers.yaml. */
function bundle(sha256 = release().sha256): string {
  const dir = tempDir("axe-inst-bundle");
  const name = `axe-appliance-${hostTarget()}`;
  copyFileSync(INSTALL_SH, join(dir, "install.sh"));
  copyFileSync(release().binary, join(dir, name));
  writeFileSync(join(dir, "SHA256SUMS"), `${sha256}  ${name}\n`);
  copyFileSync(fleet, join(dir, "customers.yaml"));
  return dir;
}

/** Runs a plist through Python's plistlib: the text must be a valid property list. */
function parsePlist(file: string): Record<string, unknown> {
  const run = Bun.spawnSync(
    ["python3", "-c", "import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))", file],
    { stdout: "pipe", stderr: "pipe" },
  );
  if (run.exitCode !== 0) throw new Error(run.stderr.toString());
  return JSON.parse(run.stdout.toString());
}

describe("install.sh from a release bundle", () => {
  test("without --binary it installs the binary beside it, checked against SHA256SUMS", async () => {
    const dir = bundle();
    const prefix = join(tempDir("axe-inst"), "axe");
    const run = await runInstall(
      ["--prefix", prefix, "--no-services", "--customer", "axe", "--no-deploy-key", ...ports],
      { script: join(dir, "install.sh") },
    );
    if (run.code !== 0) console.error(run.stdout, run.stderr);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      `binary ${join(dir, `axe-appliance-${hostTarget()}`)}: sha256 ${release().sha256} checked`,
    );
    expect(readFileSync(join(prefix, "bin/axe-appliance")).equals(readFileSync(release().binary))).toBe(true);
    expect(readFileSync(join(prefix, "config/customers.yaml"), "utf8")).toBe(readFileSync(fleet, "utf8"));
  }, 120_000);

  test("a binary whose sha256 does not match SHA256SUMS is refused before anything is written", async () => {
    const dir = bundle("0".repeat(64));
    const prefix = join(tempDir("axe-inst"), "axe");
    const run = await runInstall(["--prefix", prefix, "--no-services", "--customer", "axe", ...ports], {
      script: join(dir, "install.sh"),
    });
    expect(run.code).toBe(5);
    expect(run.stderr).toContain(`sha256 is ${release().sha256}, expected ${"0".repeat(64)}`);
    expect(existsSync(prefix)).toBe(false);
  });
});

describe("install.sh fails early and clearly, writing nothing", () => {
  const base = () => [
    "--prefix",
    join(tempDir("axe-inst"), "axe"),
    "--no-services",
    "--customers",
    fleet,
    "--binary",
    release().binary,
    ...ports,
  ];

  test("a customer that is not in customers.yaml", async () => {
    const args = base();
    const run = await runInstall([...args, "--customer", "nobody_here"]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`customer 'nobody_here' is not in ${fleet}`);
    expect(existsSync(args[1]!)).toBe(false);
  });

  test("a customer whose Entra tenant is still TBD: the binary's own validation names the key", async () => {
    const args = base();
    const run = await runInstall([...args, "--customers", join(REPO, "customers.yaml"), "--customer", "realchoice"]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain("customers.realchoice.entra.tenant_id: is TBD");
    expect(run.stderr).toContain("nothing was installed");
    expect(existsSync(args[1]!)).toBe(false);
  });

  test("no --customer on a first install", async () => {
    const run = await runInstall(base());
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--customer NAME is required on a first install");
  });

  test("an unsupported OS", async () => {
    const fake = tempDir("axe-inst-uname");
    writeFileSync(join(fake, "uname"), '#!/bin/sh\n[ "$1" = -s ] && echo FreeBSD || echo amd64\n');
    chmodSync(join(fake, "uname"), 0o755);
    const run = await runInstall([...base(), "--customer", "axe"], { env: { PATH: `${fake}:${process.env.PATH}` } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("unsupported OS 'FreeBSD'");
  });

  test("no write permission on the prefix's parent", async () => {
    const script = join(tempDir("axe-inst-script"), "install.sh");
    copyFileSync(INSTALL_SH, script);
    const args = base();
    const run = await runInstall([...args, "--customer", "axe"], { script, user: "65534" });
    expect(run.code).toBe(4);
    expect(run.stderr).toContain("no write permission on");
    expect(existsSync(args[1]!)).toBe(false);
  });

  test("a port taken by another program", async () => {
    const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const args = base();
      args[args.indexOf("--proxy-port") + 1] = String(taken.port);
      const run = await runInstall([...args, "--customer", "axe"]);
      expect(run.code).toBe(6);
      expect(run.stderr).toContain(`port ${taken.port} (proxy) in use by another program`);
      expect(existsSync(args[1]!)).toBe(false);
    } finally {
      taken.stop(true);
    }
  }, 60_000);

  test("a binary from an older release (no `services` command) is refused as the wrong binary", async () => {
    const old = join(tempDir("axe-inst-old"), "axe-appliance");
    writeFileSync(
      old,
      `#!/bin/sh\n[ "$1" = --version ] && echo "axe-appliance 0.0.9 (commit 0123456789ab, bun-${hostTarget()}, built 2026-01-01T00:00:00.000Z)" && exit 0\necho "error: unknown command 'axe-appliance $1'" >&2\nexit 2\n`,
    );
    chmodSync(old, 0o755);
    const args = base();
    args[args.indexOf("--binary") + 1] = old;
    const run = await runInstall([...args, "--customer", "axe"]);
    expect(run.code).toBe(5);
    expect(run.stderr).toContain("it is older than this install.sh");
    expect(existsSync(args[1]!)).toBe(false);
  });

  test("a database password in the URL is refused and never echoed", async () => {
    const run = await runInstall([
      ...base(),
      "--customer",
      "axe",
      "--database-url",
      "postgres://frame:s3cret-pw@127.0.0.1:3700/frame",
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--database-url holds a password");
    expect(run.stdout + run.stderr).not.toContain("s3cret-pw");
  });
});

describe("install.sh --backend launchd, deploy key, dry run, uninstall", () => {
  let prefix: string;
  let keys: string;
  const pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk5b3dUeXBlS2V5Rm9yVGVzdHNPbmx5MDEyMzQ1Njc4 operator@laptop";
  const args = (customer = "axe") => [
    "--prefix",
    prefix,
    "--no-services",
    "--backend",
    "launchd",
    "--customer",
    customer,
    "--customers",
    fleet,
    "--binary",
    release().binary,
    ...ports,
  ];

  beforeAll(() => {
    prefix = join(tempDir("axe-inst"), "axe");
    const home = tempDir("axe-inst-home");
    mkdirSync(join(home, ".ssh"), { mode: 0o700 });
    keys = join(home, ".ssh/authorized_keys");
    writeFileSync(keys, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyStays other@host\n", { mode: 0o600 });
    writeFileSync(join(home, "deploy.pub"), `${pub}\n`);
  });

  test("--dry-run prints every action and creates nothing", async () => {
    const run = await runInstall([...args(), "--dry-run"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`would create ${prefix}/config/secrets (0700)`);
    expect(run.stdout).toContain(`would install the binary to ${prefix}/bin/axe-appliance`);
    expect(run.stdout).toContain("would run: axe-appliance keys init");
    expect(run.stdout).toContain(`would write ${prefix}/services/ai.axelabs.axe.proxy.plist`);
    expect(run.stdout).toContain("dry run: nothing was changed");
    expect(existsSync(prefix)).toBe(false);
  }, 60_000);

  test("launchd plists are valid property lists; the deploy key gets the forced command once", async () => {
    const deploy = ["--deploy-key", join(keys, "../../deploy.pub"), "--authorized-keys", keys];
    const run = await runInstall([...args(), ...deploy]);
    if (run.code !== 0) console.error(run.stdout, run.stderr);
    expect(run.code).toBe(0);
    const dir = join(prefix, "services");
    expect(readdirSync(dir).sort()).toEqual([
      "ai.axelabs.axe.backup-verify.plist",
      "ai.axelabs.axe.backup.plist",
      "ai.axelabs.axe.blue.plist",
      "ai.axelabs.axe.green.plist",
      "ai.axelabs.axe.proxy.plist",
    ]);
    const proxy = parsePlist(join(dir, "ai.axelabs.axe.proxy.plist"));
    expect(proxy).toMatchObject({ Label: "ai.axelabs.axe.proxy", KeepAlive: true, RunAtLoad: true });
    expect(proxy.ProgramArguments).toEqual([
      `${prefix}/bin/axe-appliance`,
      "proxy",
      "run",
      "--config",
      `${prefix}/config`,
    ]);
    const green = parsePlist(join(dir, "ai.axelabs.axe.green.plist")).ProgramArguments as string[];
    expect(green.slice(3)).toEqual([
      `${prefix}/data/current/green/axe-appliance`,
      `${prefix}/data/current/green.env`,
      "--",
      "serve",
      "--color",
      "green",
      "--port",
      ports[5]!,
      "--config",
      `${prefix}/config`,
    ]);
    const backup = parsePlist(join(dir, "ai.axelabs.axe.backup.plist"));
    expect(backup.ProgramArguments).toEqual([
      `${prefix}/bin/axe-appliance`,
      "backup",
      "run",
      "--tier",
      "all",
      "--config",
      `${prefix}/config`,
    ]);

    // --no-services writes no sudoers rule, so the receiver runs as the deploy user itself, never through sudo
    const line = `restrict,command="${prefix}/bin/axe-appliance deploy receive --config ${prefix}/config --who operator@laptop" ${pub}`;
    expect(readFileSync(keys, "utf8")).toBe(`ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyStays other@host\n${line}\n`);
    expect(modeOf(keys)).toBe("600");

    const again = await runInstall([...args(), ...deploy]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("nothing to change");
    expect(readFileSync(keys, "utf8").split(line).length).toBe(2);
  }, 120_000);

  test("another customer on an installed prefix is refused", async () => {
    const run = await runInstall(args("other"));
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`${prefix} is already installed for customer 'axe', not 'other'`);
  });

  test("--uninstall removes the services and the forced command, keeps config, keys and data; --purge deletes them", async () => {
    const secrets = readdirSync(join(prefix, "config/secrets")).sort();
    const run = await runInstall([
      "--prefix",
      prefix,
      "--no-services",
      "--backend",
      "launchd",
      "--uninstall",
      "--authorized-keys",
      keys,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`removed ${prefix}/services/ai.axelabs.axe.proxy.plist`);
    expect(readdirSync(join(prefix, "services"))).toEqual([]);
    expect(readFileSync(keys, "utf8")).toBe("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyStays other@host\n");
    expect(readdirSync(join(prefix, "config/secrets")).sort()).toEqual(secrets);
    expect(existsSync(join(prefix, "data/state/colors.json"))).toBe(true);

    const unconfirmed = await runInstall([
      "--prefix",
      prefix,
      "--no-services",
      "--backend",
      "launchd",
      "--uninstall",
      "--purge",
    ]);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain("confirm with --customer axe");
    expect(existsSync(join(prefix, "config/secrets/master.key"))).toBe(true);

    const purge = await runInstall([
      "--prefix",
      prefix,
      "--no-services",
      "--backend",
      "launchd",
      "--uninstall",
      "--purge",
      "--customer",
      "axe",
    ]);
    expect(purge.code).toBe(0);
    expect(existsSync(prefix)).toBe(false);
  }, 60_000);
});

test("install.sh passes shellcheck", () => {
  const run = Bun.spawnSync(["shellcheck", INSTALL_SH], { stdout: "pipe", stderr: "pipe" });
  expect(run.stdout.toString()).toBe("");
  expect(run.exitCode).toBe(0);
}, 180_000); // 5 s of CPU alone, 17 s at load 16

describe.skipIf(process.getuid?.() !== 0)("install.sh with services: the forced command needs sudo", () => {
  test("without sudo on the machine it stops before anything is installed, saying how to get it", async () => {
    // every program on PATH but sudo, whether or not this machine has it
    const path = tempDir("axe-inst-nosudo");
    for (const dir of (process.env.PATH ?? "").split(":").filter((d) => existsSync(d)))
      for (const name of readdirSync(dir))
        if (name !== "sudo" && !existsSync(join(path, name))) symlinkSync(join(dir, name), join(path, name));
    const home = tempDir("axe-inst-nosudo-home");
    writeFileSync(join(home, "deploy.pub"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk5b3dUeXBlS2V5 operator@laptop\n");
    const prefix = join(tempDir("axe-inst"), "axe");
    const run = await runInstall(
      [
        "--prefix",
        prefix,
        "--customer",
        "axe",
        "--customers",
        fleet,
        "--binary",
        release().binary,
        ...ports,
        "--deploy-key",
        join(home, "deploy.pub"),
        "--authorized-keys",
        join(home, "authorized_keys"),
      ],
      { env: { PATH: path } },
    );
    expect(run.code).toBe(3);
    expect(run.stderr).toContain("sudo is not installed");
    expect(run.stderr).toContain("apt-get install sudo");
    expect(existsSync(prefix)).toBe(false);
    expect(existsSync(join(home, "authorized_keys"))).toBe(false);
  }, 120_000);
});
