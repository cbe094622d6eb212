import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { dispatch } from "../../src/lib/cli.ts";
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
    // In-process through the same dispatcher main() uses; one real process below proves the wiring.
    for (const path of paths) {
      let text = "";
      const code = await dispatch(root, [...path, "--help"], (s) => (text += s));
      expect(code).toBe(0);
      expect(text).toContain(`Usage: axe-appliance ${path.join(" ")}`);
      expect(text).toContain("-h, --help");
    }
    const real = await runCli(["backup", "run", "--help"]);
    expect(real.code).toBe(0);
    expect(real.stdout).toContain("Usage: axe-appliance backup run");
  });

  test("the command tree loads no command's implementation; each imports its own when it runs", () => {
    // a fresh process, so modules this test file imported do not count
    const main = join(import.meta.dir, "..", "..", "src", "main.ts");
    const probe = Bun.spawnSync(
      [
        process.execPath,
        "-e",
        `await import(${JSON.stringify(main)}); console.log(JSON.stringify(Object.keys(require.cache)))`,
      ],
      { stdout: "pipe", stderr: "pipe" },
    );
    expect(probe.stderr.toString()).toBe("");
    const loaded = (JSON.parse(probe.stdout.toString()) as string[]).map((file) => file.replace(/\\/g, "/"));
    expect(loaded.some((file) => file.endsWith("/src/cli/backup.ts"))).toBe(true); // the tree itself is there
    const implementations = [
      "/src/frame/",
      "/src/backup/",
      "/src/deploy/",
      "/src/db/",
      "/src/status/",
      "/src/doctor/",
      "/src/proxy/run.ts",
      "/src/services/install.ts",
      "/node_modules/postgres/",
      "/node_modules/jose/",
      "/node_modules/@modelcontextprotocol/",
    ];
    const eager = loaded.filter(
      (file) =>
        implementations.some((part) => file.includes(part)) && !/\/src\/frame\/store\/(names|errors)\.ts$/.test(file),
    );
    expect(eager).toEqual([]);
  });

  test("an unknown command fails with one line, a hint and exit 2", async () => {
    const { code, stderr, stdout } = await runCli(["serv"]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      "error: unknown command 'axe-appliance serv'\nhint: did you mean 'axe-appliance serve'? See 'axe-appliance --help'\n",
    );
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
    for (const name of ["serve", "proxy", "deploy", "backup", "up", "token", "keys", "db", "audit", "status", "doctor"])
      expect(stdout).toContain(`  ${name} `);
  });

  test("a config problem is one message naming the file, exit 3", async () => {
    const { code, stderr } = await runCli(["db", "status", "--config", "/nonexistent"]);
    expect(code).toBe(3);
    expect(stderr).toContain("/nonexistent/appliance.yaml: not found");
    expect(stderr).toContain("hint:");
  });
});
