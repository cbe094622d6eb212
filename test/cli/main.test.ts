import { describe, expect, test } from "bun:test";
import { root } from "../../src/main.ts";
import { runCli } from "../helpers/cli.ts";

describe("the CLI", () => {
  test("--version prints version, commit and target", async () => {
    const { code, stdout } = await runCli(["--version"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^axe-appliance \d+\.\d+\.\d+ \(commit \S+, bun-\w+-\w+/);
  });

  test("every command and subcommand has --help that exits 0 and shows its usage", async () => {
    const paths: string[][] = [];
    for (const command of root.subcommands!) {
      paths.push([command.name]);
      for (const sub of command.subcommands ?? []) paths.push([command.name, sub.name]);
    }
    expect(paths.length).toBeGreaterThan(11);
    const results = await Promise.all(paths.map((p) => runCli([...p, "--help"])));
    results.forEach((result, i) => {
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Usage: axe-appliance ${paths[i]!.join(" ")}`);
      expect(result.stdout).toContain("-h, --help");
    });
  });

  test("an unknown command fails with one line, a hint and exit 2", async () => {
    const { code, stderr, stdout } = await runCli(["serv"]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe("error: unknown command 'axe-appliance serv'\nhint: did you mean 'axe-appliance serve'? See 'axe-appliance --help'\n");
  });

  test("an unknown flag fails with exit 2 and a hint", async () => {
    const { code, stderr } = await runCli(["doctor", "--jsn"]);
    expect(code).toBe(2);
    expect(stderr).toContain("unknown option '--jsn'");
    expect(stderr).toContain("did you mean '--json'?");
  });

  test("an unexpected argument is a usage error", async () => {
    const { code, stderr } = await runCli(["db", "migrate", "now"]);
    expect(code).toBe(2);
    expect(stderr).toContain("unexpected argument 'now'");
  });

  test("a group without a subcommand prints its help and exits 2", async () => {
    const { code, stdout } = await runCli(["db"]);
    expect(code).toBe(2);
    expect(stdout).toContain("Commands:");
    expect(stdout).toContain("migrate");
  });

  test("--help lists the exit codes", async () => {
    const { code, stdout } = await runCli(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain("Exit codes:");
    for (const name of ["serve", "proxy", "deploy", "backup", "up", "token", "keys", "db", "audit", "status", "doctor"]) expect(stdout).toContain(`  ${name} `);
  });

  test("a config problem is one message naming the file, exit 3", async () => {
    const { code, stderr } = await runCli(["db", "status", "--config", "/nonexistent"]);
    expect(code).toBe(3);
    expect(stderr).toContain("/nonexistent/appliance.yaml: not found");
    expect(stderr).toContain("hint:");
  });
});
