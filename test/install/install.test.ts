import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { freePort } from "../helpers/ports.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";
import { fleetFile, type InstallRun, machineArgs, modeOf, release, runInstall, snapshot } from "./harness.ts";

let db: TestDatabase;
let prefix: string;
let fleet: string;
let passwordFile: string;
let ports: { proxy: number; blue: number; green: number; metrics: number };
let first: InstallRun;

const installArgs = () => machineArgs({ prefix, fleet, db, passwordFile, ports });

beforeAll(async () => {
  release();
  db = await freshDatabase("install");
  prefix = join(tempDir("axe-inst"), "opt-axe");
  fleet = fleetFile();
  passwordFile = join(tempDir("axe-inst-pw"), "pw");
  writeFileSync(passwordFile, `${db.target.password ?? ""}\n`, { mode: 0o600 });
  ports = { proxy: await freePort(), blue: await freePort(), green: await freePort(), metrics: await freePort() };
  first = await runInstall(installArgs());
  if (first.code !== 0) console.error(first.stdout, first.stderr);
}, 180_000);

afterAll(async () => {
  await db?.drop();
});

describe("install.sh --prefix DIR --no-services", () => {
  test("a first run installs the tree, the binary, the config, the keys and the first release", () => {
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`sha256 ${release().sha256} checked`);
    expect(first.stdout).toContain(`installed axe-appliance for customer axe in ${prefix}`);
    for (const dir of ["bin", "config", "data", "services"]) expect(modeOf(join(prefix, dir))).toBe("755");
    expect(modeOf(join(prefix, "config/secrets"))).toBe("700");
    // the services' logs name who called which tool: no other account reads them
    expect(modeOf(join(prefix, "data/logs"))).toBe("700");
    expect(modeOf(join(prefix, "bin/axe-appliance"))).toBe("755");
    expect(readFileSync(join(prefix, "bin/axe-appliance")).equals(readFileSync(release().binary))).toBe(true);
    for (const secret of [
      "master.key",
      "token.key",
      "audit.key",
      "audit-keys.json",
      "database.password",
      "restic-local.password",
      "ring_ed25519",
      "ring_ed25519.pub",
    ])
      expect(`${secret} ${modeOf(join(prefix, "config/secrets", secret))}`).toBe(`${secret} 600`);
    // the ring's own ssh key: its public half is printed for the peer's install.sh --ring-peer axe --ring-key
    const ringPub = readFileSync(join(prefix, "config/secrets/ring_ed25519.pub"), "utf8").trim();
    expect(ringPub).toMatch(/^ssh-ed25519 AAAA\S+ axe-ring@axe$/);
    expect(first.stdout).toContain(`--ring-peer axe --ring-key FILE`);
    expect(first.stdout).toContain(`\n  ${ringPub}\n`);
    expect(readFileSync(join(prefix, "config/secrets/database.password"), "utf8")).toBe(
      readFileSync(passwordFile, "utf8"),
    );
    expect(readFileSync(join(prefix, "config/customers.yaml"), "utf8")).toBe(readFileSync(fleet, "utf8"));
    expect(existsSync(join(prefix, "data/backup/restic/config"))).toBe(true); // backup init made the local repository
  });

  test("appliance.yaml names the customer, the data directory, the database and the ports", () => {
    const appliance = parse(readFileSync(join(prefix, "config/appliance.yaml"), "utf8"));
    expect(appliance).toEqual({
      customer: "axe",
      data_dir: join(prefix, "data"),
      secrets_dir: "secrets",
      database: {
        url: `postgres://${db.target.user}@${encodeURIComponent(db.target.host)}:${db.target.port}/${db.target.database}`,
        password_file: "database.password",
      },
      frame: { ports: { blue: ports.blue, green: ports.green } },
      proxy: { listen: `127.0.0.1:${ports.proxy}`, metrics_listen: `127.0.0.1:${ports.metrics}` },
      deploy: { service_backend: "child" }, // --no-services: `up` runs it, and the receiver restarts its colors
      backup: { ring: { identity_file: "ring_ed25519" } }, // the ring tier's own key, not root's
    });
  });

  test("blue and green point at a first release made from the installed binary", () => {
    const colors = JSON.parse(readFileSync(join(prefix, "data/state/colors.json"), "utf8"));
    const version = colors.blue.version as string;
    expect(version).toMatch(/^\d+\.\d+\.\d+\+\d{14}\.[0-9a-z]+$/);
    expect(colors.green.version).toBe(version);
    for (const color of ["blue", "green"]) {
      expect(readlinkSync(join(prefix, "data/current", color))).toBe(join("..", "releases", version));
      expect(readFileSync(join(prefix, `data/current/${color}.env`), "utf8")).toBe(`AXE_RELEASE=${version}\n`);
    }
    const manifest = JSON.parse(readFileSync(join(prefix, "data/releases", version, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({
      format: "axe-release/1",
      version,
      sha256: release().sha256,
      size: readFileSync(release().binary).length,
    });
    expect(first.stdout).toContain(`pointed blue at release ${version}`);
  });

  test("the systemd units in PREFIX/services run the installed binary and the current links", () => {
    const dir = join(prefix, "services");
    const cfg = join(prefix, "config");
    const proxy = readFileSync(join(dir, "ai.axelabs.axe.proxy.service"), "utf8");
    expect(proxy).toContain(`ExecStart=${prefix}/bin/axe-appliance proxy run --config ${cfg}\n`);
    expect(proxy).toContain("Restart=always\n");
    const blue = readFileSync(join(dir, "ai.axelabs.axe.blue.service"), "utf8");
    expect(blue).toContain(
      `ExecStart=${prefix}/data/current/blue/axe-appliance serve --color blue --port ${ports.blue} --config ${cfg}\n`,
    );
    expect(blue).toContain(`EnvironmentFile=-${prefix}/data/current/blue.env\n`);
    const green = readFileSync(join(dir, "ai.axelabs.axe.green.service"), "utf8");
    expect(green).toContain(`--port ${ports.green} --config ${cfg}\n`);
    expect(readFileSync(join(dir, "ai.axelabs.axe.backup.service"), "utf8")).toContain(
      `ExecStart=${prefix}/bin/axe-appliance backup run --tier all --config ${cfg}\n`,
    );
    expect(readFileSync(join(dir, "ai.axelabs.axe.backup.timer"), "utf8")).toContain("OnCalendar=*-*-* 02:30:00\n");
    expect(readFileSync(join(dir, "ai.axelabs.axe.backup-verify.service"), "utf8")).toContain(
      `ExecStart=${prefix}/bin/axe-appliance backup verify --config ${cfg}\n`,
    );
    for (const file of ["ai.axelabs.axe.proxy.service", "ai.axelabs.axe.backup.timer"])
      expect(modeOf(join(dir, file))).toBe("644");
  });

  test("doctor ran at the end and found nothing wrong; no secret reached the output", () => {
    expect(first.stdout).toMatch(/OK +config +.*customer axe/);
    expect(first.stdout).toMatch(/OK +secret file modes/);
    expect(first.stdout).not.toMatch(/^ *FAIL/m);
    for (const secret of ["master.key", "token.key", "audit.key", "database.password", "restic-local.password"]) {
      const value = readFileSync(join(prefix, "config/secrets", secret), "utf8").trim();
      expect(first.stdout + first.stderr).not.toContain(value);
    }
  });

  test("a second run changes nothing and says so", async () => {
    const exclude = (tree: Record<string, string>) =>
      Object.fromEntries(Object.entries(tree).filter(([path]) => !path.startsWith("data/cache")));
    const before = exclude(snapshot(prefix));
    const again = await runInstall(installArgs());
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`nothing to change: ${prefix} is installed for customer axe`);
    expect(again.stdout).not.toMatch(/^install\.sh: (create|install|write|created|wrote|pointed)/m);
    expect(exclude(snapshot(prefix))).toEqual(before);
  }, 120_000);

  test("a secret file is never overwritten: a changed password file is reported and the old one kept", async () => {
    const other = join(tempDir("axe-inst-pw2"), "pw");
    writeFileSync(other, "another-password\n", { mode: 0o600 });
    const args = installArgs();
    args[args.indexOf("--database-password-file") + 1] = other;
    const run = await runInstall(args);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("kept the existing");
    expect(run.stderr).not.toContain("another-password");
    expect(readFileSync(join(prefix, "config/secrets/database.password"), "utf8")).toBe(
      readFileSync(passwordFile, "utf8"),
    );
  }, 120_000);

  test("the installed binary serves from the prefix: blue through its current link answers /healthz", async () => {
    const cfg = join(prefix, "config");
    const version = readFileSync(join(prefix, "data/current/blue.env"), "utf8").trim().split("=")[1]!;
    const child = Bun.spawn(
      [
        join(prefix, "data/current/blue/axe-appliance"),
        "serve",
        "--color",
        "blue",
        "--port",
        String(ports.blue),
        "--config",
        cfg,
      ],
      {
        env: { ...process.env, AXE_CONFIG_DIR: cfg, AXE_RELEASE: version },
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    try {
      const health = await waitFor("blue to answer /healthz", () => fetch(`http://127.0.0.1:${ports.blue}/healthz`), {
        retryErrors: true,
        intervalMs: 100,
      });
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({
        status: "ok",
        service: "axe-frame",
        color: "blue",
        release: version,
        database: { reachable: true },
      });
    } finally {
      child.kill("SIGTERM");
      await child.exited;
    }
  }, 60_000);

  test("the generated units run as written: proxy, blue and green from their ExecStart lines answer through the proxy", async () => {
    const started = ["proxy", "blue", "green"].map((name) => {
      const unit = readFileSync(join(prefix, "services", `ai.axelabs.axe.${name}.service`), "utf8");
      const argv = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(" ");
      const env: Record<string, string> = {};
      for (const [, key, value] of unit.matchAll(/^Environment=(\w+)=(.*)$/gm)) env[key!] = value!;
      const envFile = /^EnvironmentFile=-(.*)$/m.exec(unit)?.[1];
      if (envFile)
        for (const [, key, value] of readFileSync(envFile, "utf8").matchAll(/^(\w+)=(.*)$/gm)) env[key!] = value!;
      return Bun.spawn(argv, {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
        stdout: "ignore",
        stderr: "pipe",
      });
    });
    try {
      const url = `http://127.0.0.1:${ports.proxy}/.well-known/oauth-protected-resource/frame/mcp`;
      const answer = await waitFor(
        "the proxy to answer for the live color",
        async () => {
          const response = await fetch(url);
          return response.status === 200 && response;
        },
        { retryErrors: true, intervalMs: 100, timeoutMs: 60_000 },
      );
      expect(await answer.json()).toMatchObject({
        resource: "https://axe.axelabs.ai/frame/mcp",
        scopes_supported: ["https://axe.axelabs.ai/frame/mcp/frame.access"],
      });
      // --metrics-port: the proxy's /metrics on the port install.sh was given, never the default 3714
      const metrics = await fetch(`http://127.0.0.1:${ports.metrics}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain("axe_proxy_requests_total");
      // The proxy answering says the live color is up, not that green has finished starting.
      const health = await waitFor(
        "green to answer /healthz",
        async () => {
          const response = await fetch(`http://127.0.0.1:${ports.green}/healthz`);
          return response.status === 200 && response;
        },
        { retryErrors: true, intervalMs: 100 },
      );
      expect(await health.json()).toMatchObject({ status: "ok", color: "green" });
    } finally {
      for (const child of started) child.kill("SIGTERM");
      await Promise.all(started.map((child) => child.exited));
    }
  }, 150_000);
});
