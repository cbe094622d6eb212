/**
 * `fleet status` against real sshd endpoints on loopback, each with a forced command running the
 * real `axe-appliance status --json` against its own config dir: one machine answers, one is down
 * (its sshd stopped), one hangs past the timeout, one answers with another command (the deploy
 * key's). Every machine is a row; nothing crashes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { FleetRow } from "../../src/status/fleet.ts";
import { MAIN, runCli } from "../helpers/cli.ts";
import { makeConfigDir, TENANT_AXE, TEST_CUSTOMERS } from "../helpers/config.ts";
import { CONNECT_TIMEOUT_S, startSshd, type TestSshd } from "../helpers/sshd.ts";
import { tempDir } from "../helpers/tmp.ts";
import { recordSnapshots } from "./fixtures.ts";

const ESC = "\u001b";
const BEL = "\u0007";

/** A status report as `status --json` prints it, every free-text field carrying `text`. */
function craftedReport(text: string) {
  const color = { live: true, healthy: true, release: text, error: null };
  return {
    version: 1,
    customer: "evil",
    machine: "evil-macmini",
    time: new Date().toISOString(),
    level: "warn",
    live: "blue",
    release: text,
    colors: { blue: color, green: { ...color, live: false } },
    database: { reachable: true, migration: 6, via: text },
    lastDeploy: {
      action: "deploy",
      release: text,
      ok: true,
      started: new Date().toISOString(),
      who: text,
      error: null,
    },
    backup: [],
    metadata: { url: text, ok: true, detail: text },
    disk: null,
    checks: [{ name: text, level: "warn", summary: text }],
  };
}

const started: TestSshd[] = [];
let fleetFile: string;
let sshConfig: string;
let axeDir: string;

beforeAll(async () => {
  axeDir = makeConfigDir();
  const otherDir = makeConfigDir({ appliance: { customer: "other" } });
  recordSnapshots(join(axeDir, "data", "state"), { local: 3 });
  const status = (dir: string) => `${process.execPath} ${MAIN} status --json --config ${dir}`;
  const axe = await startSshd({ forcedCommand: status(axeDir), env: { HOME: tempDir("axe-home") } });
  const other = await startSshd({ forcedCommand: status(otherDir) });
  // hangs past the timeout, for as long as its session lives (a client killed at the timeout ends it)
  const hung = await startSshd({ forcedCommand: "while kill -0 $PPID 2>/dev/null; do sleep 1; done" });
  const wrong = await startSshd({
    forcedCommand: "echo '{\"steps\":[]}'; echo 'error: no release on stdin' >&2; exit 6",
  });
  // A machine someone took over: a well-formed report whose strings steer the operator's terminal
  // (erase the line, move up, retitle), and an ssh failure whose last words do the same.
  const evilReport = join(tempDir("axe-evil"), "report.json");
  writeFileSync(evilReport, JSON.stringify(craftedReport(`${ESC}[2K${ESC}[1A${ESC}]0;owned${BEL}all fine`)));
  const evil = await startSshd({ forcedCommand: `cat ${evilReport}` });
  started.push(axe, other, hung, wrong, evil);
  const dir = tempDir("axe-fleet");
  sshConfig = join(dir, "ssh_config");
  writeFileSync(
    sshConfig,
    [
      axe.configFile("axe-macmini"),
      other.configFile("other-macmini"),
      hung.configFile("hung-macmini"),
      wrong.configFile("wrong-macmini"),
      evil.configFile("evil-macmini"),
    ]
      .map((f) => readFileSync(f, "utf8"))
      .join("\n"),
  );
  fleetFile = join(dir, "customers.yaml");
  const customers = [
    ...TEST_CUSTOMERS.customers,
    {
      name: "hung",
      domains: ["hung.example"],
      host: "hung.axelabs.ai",
      machine: "hung-macmini",
      entra: { tenant_id: TENANT_AXE },
    },
    {
      name: "wrong",
      domains: ["wrong.example"],
      host: "wrong.axelabs.ai",
      machine: "wrong-macmini",
      entra: { tenant_id: TENANT_AXE },
    },
    {
      name: "evil",
      domains: ["evil.example"],
      host: "evil.axelabs.ai",
      machine: "evil-macmini",
      entra: { tenant_id: TENANT_AXE },
    },
  ].map((c) => ({ ...c, ssh_user: axe.user }));
  writeFileSync(fleetFile, stringify({ customers }));
  await other.stop(); // the machine that is down
}, 60_000);

afterAll(async () => {
  for (const sshd of started) await sshd.stop();
});

describe("fleet status", () => {
  test("one machine reports, one is down, one hangs past the timeout, one runs another command: four rows, exit 12", async () => {
    const args = [
      "fleet",
      "status",
      "--customers",
      fleetFile,
      "--ssh-config",
      sshConfig,
      ...["axe", "other", "hung", "wrong"].flatMap((c) => ["--customer", c]),
      "--ssh-option",
      `ConnectTimeout=${CONNECT_TIMEOUT_S}`,
      // long enough for the answering machine to start `status` on a loaded machine; the hung one waits it out
      "--timeout",
      "30",
    ];
    // both at once: each waits the whole timeout for the hung machine
    const [json, table] = await Promise.all([runCli([...args, "--json"]), runCli(args)]);
    if (json.code !== 12) console.error(json.stdout, json.stderr);
    expect(json.code).toBe(12);
    const rows = JSON.parse(json.stdout) as FleetRow[];
    expect(rows.map((r) => [r.customer, r.state])).toEqual([
      ["axe", "fail"],
      ["other", "unreachable"],
      ["hung", "unreachable"],
      ["wrong", "unreachable"],
    ]);

    const axe = rows[0]!.report!;
    expect(axe.customer).toBe("axe"); // the report came from that machine's config dir
    expect(axe.checks.find((c) => c.name === "proxy")!.level).toBe("fail"); // nothing runs there
    expect(axe.backup.find((b) => b.tier === "local")!.problems).toEqual([]);
    expect(rows[1]!.error).toMatch(/refused|closed|ssh/i);
    expect(rows[2]!.error).toBe("no answer within 30000 ms");
    expect(rows[3]!.error).toContain("no status report (error: no release on stdin)");
    expect(rows[3]!.error).toContain("forced command");

    expect(table.code).toBe(12);
    const lines = table.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^CUSTOMER\s+MACHINE\s+STATE/);
    expect(lines[1]).toMatch(/^axe\s+axe-macmini\s+RED\s/);
    expect(lines[2]).toMatch(/^other\s+other-macmini\s+UNREACHABLE\s/);
    expect(lines[3]).toMatch(/^hung\s+hung-macmini\s+UNREACHABLE\s.*no answer within 30000 ms/);
    expect(lines[4]).toMatch(/^wrong\s+wrong-macmini\s+UNREACHABLE\s/);
  }, 120_000);

  test("--customer picks machines; an unknown name is a usage error", async () => {
    const only = await runCli([
      "fleet",
      "status",
      "--json",
      "--customers",
      fleetFile,
      "--ssh-config",
      sshConfig,
      "--customer",
      "other",
    ]);
    expect(only.code).toBe(12);
    expect((JSON.parse(only.stdout) as FleetRow[]).map((r) => r.customer)).toEqual(["other"]);
    const unknown = await runCli(["fleet", "status", "--customers", fleetFile, "--customer", "nobody"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("--customer nobody is not in");
  }, 30_000);

  test("a machine's report cannot put terminal control sequences into the operator's table", async () => {
    const args = ["fleet", "status", "--customers", fleetFile, "--ssh-config", sshConfig, "--customer", "evil"];
    const [json, table] = await Promise.all([runCli([...args, "--json"]), runCli(args)]);
    expect(json.code).toBe(11);
    expect((JSON.parse(json.stdout) as FleetRow[])[0]!.report!.checks[0]!.summary).toContain(ESC); // data kept as sent
    expect(table.code).toBe(11);
    expect(table.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(table.stdout).toMatch(/^evil\s+evil-macmini\s+YELLOW\s/m);
    expect(table.stdout).toContain("all fine");
  }, 30_000);
});
