import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { launchdPlist, launchdPlists } from "../../src/services/launchd.ts";
import { systemdUnit, systemdUnits } from "../../src/services/systemd.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { launchdProblems, parsePlistStrictly } from "../helpers/plist.ts";
import { tempDir } from "../helpers/tmp.ts";

const config = () =>
  loadConfig({ dir: makeConfigDir({ appliance: { frame: { ports: { blue: 4710, green: 4711 } } } }) });

/** Parses a plist with Python's plistlib: the text must be a valid property list. */
function parsePlist(text: string): Record<string, unknown> {
  const file = join(tempDir("axe-plist"), "x.plist");
  writeFileSync(file, text);
  const run = Bun.spawnSync(
    ["python3", "-c", "import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))", file],
    { stdout: "pipe", stderr: "pipe" },
  );
  if (run.exitCode !== 0) throw new Error(run.stderr.toString());
  return JSON.parse(run.stdout.toString());
}

describe("systemd units", () => {
  test("each color runs the current/<color> link with its env file, kept alive by systemd", () => {
    const c = config();
    const green = systemdUnit(c, "green", { user: "axe" });
    expect(green).toContain(
      `ExecStart=${c.paths.data}/current/green/axe-appliance serve --color green --port 4711 --config ${c.dir}\n`,
    );
    expect(green).toContain(`EnvironmentFile=-${c.paths.data}/current/green.env\n`);
    expect(green).toContain(`Environment=AXE_CONFIG_DIR=${c.dir}\n`);
    expect(green).toContain("Restart=always\n");
    expect(green).toContain("User=axe\n");
    expect(green).toContain(`StandardOutput=append:${c.paths.data}/logs/green.log\n`);
    expect(green).toContain("KillMode=process\n"); // an embedded Postgres it started outlives its restart
    const proxy = systemdUnit(c, "proxy", { binary: "/opt/axe/bin/axe-appliance" });
    expect(proxy).toContain(`ExecStart=/opt/axe/bin/axe-appliance proxy run --config ${c.dir}\n`);
    expect(proxy).not.toContain("EnvironmentFile");
    expect(proxy).toContain(`Environment=AXE_CONFIG_DIR=${c.dir}\n`);
    expect(proxy).toContain("Environment=BUN_JSC_forceRAMSize=134217728\n"); // the proxy's heap sizing (decision 41)
    expect(green).not.toContain("BUN_JSC_");
    expect(systemdUnits(c).map((u) => u.file)).toEqual([
      "ai.axelabs.axe.proxy.service",
      "ai.axelabs.axe.blue.service",
      "ai.axelabs.axe.green.service",
    ]);
  });

  test("frame.run_as: blue and green run as it, the proxy as root (decision 79)", () => {
    const c = loadConfig({ dir: makeConfigDir({ appliance: { frame: { run_as: "postgres" } } }) });
    for (const color of ["blue", "green"] as const) expect(systemdUnit(c, color)).toContain("User=postgres\n");
    expect(systemdUnit(c, "proxy")).not.toContain("User=");
    expect(parsePlist(launchdPlist(c, "blue")).UserName).toBe("postgres");
    expect(parsePlist(launchdPlist(c, "proxy")).UserName).toBeUndefined();
    expect(systemdUnit(c, "green", { user: "axe" })).toContain("User=axe\n"); // `services install --user` names one for all
  });

  test("frame.run_as must be the embedded cluster's account, and not root", () => {
    const problem = (appliance: Record<string, unknown>) => {
      try {
        loadConfig({ dir: makeConfigDir({ appliance }) });
        return "loaded";
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(problem({ frame: { run_as: "axe" } })).toContain(
      "is axe, but the embedded cluster runs as postgres (database.embedded_run_as)",
    );
    expect(problem({ frame: { run_as: "axe" }, database: { embedded_run_as: "axe" } })).toBe("loaded");
    expect(problem({ frame: { run_as: "root" } })).toContain("root is what leaving it unset means");
    expect(problem({ frame: { run_as: "a b" } })).toContain("expected an account name");
  });

  test("a path with a space is quoted", () => {
    const c = config();
    const unit = systemdUnit({ ...c, dir: "/opt/axe config" }, "proxy", { binary: "/opt/axe/bin/axe-appliance" });
    expect(unit).toContain('ExecStart=/opt/axe/bin/axe-appliance proxy run --config "/opt/axe config"\n');
  });
});

describe("systemd-analyze", () => {
  test.skipIf(!Bun.which("systemd-analyze"))("accepts every generated unit without a warning", () => {
    const c = config();
    const dir = tempDir("axe-units");
    for (const color of ["blue", "green"] as const) {
      mkdirSync(join(c.paths.data, "current", color), { recursive: true });
      copyFileSync("/bin/true", join(c.paths.data, "current", color, "axe-appliance"));
    }
    for (const unit of systemdUnits(c, { binary: "/bin/true" })) writeFileSync(join(dir, unit.file), unit.text);
    const files = systemdUnits(c).map((u) => join(dir, u.file));
    const run = Bun.spawnSync(["systemd-analyze", "verify", "--man=no", ...files], { stdout: "pipe", stderr: "pipe" });
    expect(run.stderr.toString()).toBe("");
    expect(run.exitCode).toBe(0);
  });
});

describe("launchd plists", () => {
  test("valid property lists; a color loads its env file through /bin/sh and execs the current link", () => {
    const c = config();
    const blue = parsePlist(launchdPlist(c, "blue"));
    expect(blue.Label).toBe("ai.axelabs.axe.blue");
    expect(blue.KeepAlive).toBe(true);
    expect(blue.RunAtLoad).toBe(true);
    expect(blue.EnvironmentVariables).toEqual({ AXE_CONFIG_DIR: c.dir });
    const argv = blue.ProgramArguments as string[];
    expect(argv.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
    expect(argv.slice(3)).toEqual([
      `${c.paths.data}/current/blue/axe-appliance`,
      `${c.paths.data}/current/blue.env`,
      "--",
      "serve",
      "--color",
      "blue",
      "--port",
      "4710",
      "--config",
      c.dir,
    ]);
    const proxy = parsePlist(launchdPlist(c, "proxy", { binary: "/opt/axe/bin/axe-appliance", user: "axe" }));
    expect(proxy.ProgramArguments).toEqual(["/opt/axe/bin/axe-appliance", "proxy", "run", "--config", c.dir]);
    expect(proxy.UserName).toBe("axe");
    expect(proxy.EnvironmentVariables).toEqual({ AXE_CONFIG_DIR: c.dir, BUN_JSC_forceRAMSize: "134217728" });
    expect(launchdPlists(c).map((p) => p.file)).toEqual([
      "ai.axelabs.axe.proxy.plist",
      "ai.axelabs.axe.blue.plist",
      "ai.axelabs.axe.green.plist",
    ]);
  });

  test("every plist parses with libplist (plistutil), survives a round trip, and uses launchd's keys for a service", () => {
    const c = config();
    for (const { file, text } of [
      ...launchdPlists(c),
      ...launchdPlists(c, { binary: "/opt/axe/bin/axe-appliance", user: "axe" }),
    ]) {
      const plist = parsePlistStrictly(text);
      expect({ file, problems: launchdProblems(plist, "service") }).toEqual({ file, problems: [] });
    }
    // The checks can fail: a dict key without a value, a misspelt key, a timer kept alive.
    expect(() => parsePlistStrictly('<plist version="1.0"><dict><key>Label</key></dict></plist>')).toThrow();
    expect(launchdProblems({ Label: "x", ProgramArguments: ["a"], KeepAlive: true, Nise: 1 }, "timer")).toEqual([
      "Nise: not a launchd key we expect",
      "StandardErrorPath: missing for a timer",
      "StartCalendarInterval or StartInterval: missing for a timer",
      "KeepAlive: a timer must not be kept alive",
    ]);
  });

  test("the /bin/sh line really loads the env file and passes the arguments through", () => {
    const c = config();
    const argv = parsePlist(launchdPlist(c, "green")).ProgramArguments as string[];
    const dir = tempDir("axe-sh");
    const env = join(dir, "green.env");
    writeFileSync(env, "AXE_RELEASE=3.1.4\n");
    // run the same script with a stand-in program that prints what it got
    const run = Bun.spawnSync(
      [argv[0]!, argv[1]!, argv[2]!, "/bin/sh", env, "--", "-c", 'echo "$AXE_RELEASE $*"', "x", "a b", "c"],
      { stdout: "pipe" },
    );
    expect(run.stdout.toString()).toBe("3.1.4 a b c\n");
  });
});

describe("deploy units", () => {
  test("writes the three systemd units (or launchd plists) the generators make", async () => {
    const { runCli } = await import("../helpers/cli.ts");
    const c = config();
    const out = tempDir("axe-units-out");
    const run = await runCli([
      "deploy",
      "units",
      "--out",
      out,
      "--backend",
      "systemd",
      "--user",
      "axe",
      "--config",
      c.dir,
    ]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    for (const unit of systemdUnits(c, { user: "axe" }))
      expect(readFileSync(join(out, unit.file), "utf8")).toBe(unit.text);
    const plists = await runCli(["deploy", "units", "--out", out, "--backend", "launchd", "--config", c.dir]);
    expect(plists.code).toBe(0);
    for (const plist of launchdPlists(c)) expect(readFileSync(join(out, plist.file), "utf8")).toBe(plist.text);
  }, 30_000);
});
