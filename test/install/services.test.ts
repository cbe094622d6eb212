/**
 * `axe-appliance services install|uninstall` with loading on: the compiled binary runs against
 * stand-ins for launchctl and systemctl (first on PATH) that record their arguments, since a test
 * must not load units into this machine's own init system.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";
import { release } from "./harness.ts";

let fakes: string;
let calls: string;

/** launchctl print answers "loaded" for labels listed in the file named by $LOADED. */
const LAUNCHCTL = `#!/bin/sh
echo "launchctl $*" >> "$CALLS"
if [ "$1" = print ]; then grep -qx "\${2#system/}" "$LOADED" 2>/dev/null; exit $?; fi
if [ "$1" = bootstrap ]; then basename "$3" .plist >> "$LOADED"; fi
exit 0
`;
/** systemctl is-enabled / is-active answer yes for units enabled through it (listed in $LOADED). */
const SYSTEMCTL = `#!/bin/sh
case "$1" in
  is-enabled | is-active) grep -qx "$3" "$LOADED" 2>/dev/null; exit $? ;;
esac
echo "systemctl $*" >> "$CALLS"
if [ "$1" = enable ]; then shift 2; for unit in "$@"; do echo "$unit" >> "$LOADED"; done; fi
exit 0
`;

beforeAll(() => {
  release();
  fakes = tempDir("axe-inst-fakes");
  writeFileSync(join(fakes, "launchctl"), LAUNCHCTL);
  writeFileSync(join(fakes, "systemctl"), SYSTEMCTL);
  chmodSync(join(fakes, "launchctl"), 0o755);
  chmodSync(join(fakes, "systemctl"), 0o755);
}, 180_000);

function services(args: string[], config: string) {
  calls = join(config, "calls.log");
  const configArgs = args[0] === "uninstall" ? [] : ["--binary", release().binary, "--config", config];
  const run = Bun.spawnSync([release().binary, "services", ...args, ...configArgs], {
    env: {
      ...process.env,
      AXE_CONFIG_DIR: "",
      PATH: `${fakes}:${process.env.PATH}`,
      CALLS: calls,
      LOADED: join(config, "loaded"),
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const log = (() => {
    try {
      return readFileSync(calls, "utf8");
    } catch {
      return "";
    }
  })();
  writeFileSync(calls, "");
  return { code: run.exitCode, stdout: run.stdout.toString(), stderr: run.stderr.toString(), calls: log };
}

describe("services install loads what changed, once", () => {
  test("systemd: daemon-reload and enable --now the first time; nothing the second; a changed unit is reloaded and restarted", () => {
    const config = makeConfigDir({ appliance: { data_dir: "data" } });
    const dir = tempDir("axe-inst-units");
    const first = services(["install", "--backend", "systemd", "--dir", dir], config);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const enable =
      "systemctl enable --now ai.axelabs.axe.proxy.service ai.axelabs.axe.blue.service ai.axelabs.axe.green.service ai.axelabs.axe.backup.timer ai.axelabs.axe.backup-verify.timer";
    expect(first.calls).toBe(`systemctl daemon-reload\n${enable}\n`);

    const second = services(["install", "--backend", "systemd", "--dir", dir], config);
    expect(second.code).toBe(0);
    expect(second.calls).toBe("");
    expect(second.stdout).not.toContain("wrote");

    writeFileSync(join(dir, "ai.axelabs.axe.green.service"), "[Unit]\nDescription=edited by hand\n");
    const third = services(["install", "--backend", "systemd", "--dir", dir], config);
    expect(third.stdout).toContain(`wrote ${dir}/ai.axelabs.axe.green.service`);
    expect(third.calls).toBe(
      "systemctl daemon-reload\nsystemctl enable --now ai.axelabs.axe.green.service\nsystemctl try-restart ai.axelabs.axe.green.service\n",
    );

    const removed = services(["uninstall", "--backend", "systemd", "--dir", dir], config);
    expect(removed.code).toBe(0);
    expect(removed.calls).toBe(`${enable.replace("enable --now", "disable --now")}\nsystemctl daemon-reload\n`);
    expect(removed.stdout).toContain(`removed ${dir}/ai.axelabs.axe.backup.service`);
  });

  test("systemd: backup timers under their old names (axe-backup.*) are disabled and removed, so nothing runs twice", () => {
    const config = makeConfigDir({ appliance: { data_dir: "data" } });
    const dir = tempDir("axe-inst-legacy");
    for (const file of [
      "axe-backup.service",
      "axe-backup.timer",
      "axe-backup-verify.service",
      "axe-backup-verify.timer",
    ])
      writeFileSync(join(dir, file), "[Unit]\nDescription=an older install\n");
    const run = services(["install", "--backend", "systemd", "--dir", dir], config);
    expect(run.code).toBe(0);
    expect(run.calls.split("\n")[0]).toBe("systemctl disable --now axe-backup.timer axe-backup-verify.timer");
    expect(run.calls).toContain("ai.axelabs.axe.backup.timer ai.axelabs.axe.backup-verify.timer");
    expect(readdirSync(dir).filter((f) => f.startsWith("axe-"))).toEqual([]);
    expect(
      readdirSync(dir)
        .filter((f) => f.endsWith(".timer"))
        .sort(),
    ).toEqual(["ai.axelabs.axe.backup-verify.timer", "ai.axelabs.axe.backup.timer"]);
  });

  test("launchd: bootstrap each plist that is not loaded; a changed plist is booted out first; uninstall boots out", () => {
    const config = makeConfigDir({ appliance: { data_dir: "data" } });
    const dir = tempDir("axe-inst-plists");
    const labels = [
      "ai.axelabs.axe.proxy",
      "ai.axelabs.axe.blue",
      "ai.axelabs.axe.green",
      "ai.axelabs.axe.backup",
      "ai.axelabs.axe.backup-verify",
    ];
    const first = services(["install", "--backend", "launchd", "--dir", dir], config);
    expect(first.code).toBe(0);
    expect(first.calls).toBe(
      labels.map((l) => `launchctl print system/${l}\nlaunchctl bootstrap system ${dir}/${l}.plist\n`).join(""),
    );

    const second = services(["install", "--backend", "launchd", "--dir", dir], config);
    expect(second.calls).toBe(labels.map((l) => `launchctl print system/${l}\n`).join(""));

    writeFileSync(join(dir, "ai.axelabs.axe.proxy.plist"), "<plist/>\n");
    const third = services(["install", "--backend", "launchd", "--dir", dir], config);
    expect(third.calls.split("\n").slice(0, 3)).toEqual([
      "launchctl print system/ai.axelabs.axe.proxy",
      "launchctl bootout system/ai.axelabs.axe.proxy",
      `launchctl bootstrap system ${dir}/ai.axelabs.axe.proxy.plist`,
    ]);

    const removed = services(["uninstall", "--backend", "launchd", "--dir", dir], config);
    expect(removed.calls).toBe(labels.map((l) => `launchctl bootout system/${l}\n`).join(""));
  });

  test("--dry-run names every command and runs none; a config error is exit 3 with the file and key", () => {
    const config = makeConfigDir({ appliance: { data_dir: "data" } });
    const dir = tempDir("axe-inst-dry");
    const dry = services(["install", "--backend", "systemd", "--dir", dir, "--dry-run"], config);
    expect(dry.code).toBe(0);
    expect(dry.calls).toBe("");
    expect(dry.stdout).toContain("would run: systemctl daemon-reload");
    expect(dry.stdout).toContain(`would write ${dir}/ai.axelabs.axe.proxy.service`);

    const broken = makeConfigDir({ appliance: { data_dir: "data", frame: { ports: { blue: "x" } } } });
    const bad = services(["print", "--backend", "systemd"], broken);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain("appliance.yaml");
    expect(bad.stderr).toContain("frame.ports");
  });
});
