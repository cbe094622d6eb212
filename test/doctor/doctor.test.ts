import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { instanceId } from "../../src/lib/instance.ts";
import { writeSecretFile } from "../../src/lib/secret-file.ts";
import { runCli } from "../helpers/cli.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("doctor", () => {
  test("a good config passes the config and secret checks; a world-readable secret fails with its fix", async () => {
    const dir = makeConfigDir({ appliance: { data_dir: tempDir("axe-data") } });
    writeSecretFile(join(dir, "secrets", "master.key"), "k");
    const good = await runCli(["doctor", "--json", "--config", dir]);
    const checks = JSON.parse(good.stdout) as Array<{ name: string; ok: boolean; fix?: string }>;
    expect(checks.find((c) => c.name === "config")!.ok).toBe(true);
    expect(checks.find((c) => c.name === "secret file modes")!.ok).toBe(true);

    chmodSync(join(dir, "secrets", "master.key"), 0o644);
    const bad = await runCli(["doctor", "--config", dir]);
    expect(bad.code).toBe(10);
    expect(bad.stdout).toMatch(/FAIL\s+secret file modes\s+readable by others: .*master\.key/);
    expect(bad.stdout).toContain(`fix: chmod 600 ${join(dir, "secrets", "master.key")}`);
  });

  test("a port held by another program fails with how to find it", async () => {
    const squatter = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("not us") });
    try {
      const dir = makeConfigDir({
        appliance: { frame: { ports: { blue: squatter.port, green: 1 } }, proxy: { listen: "127.0.0.1:1" } },
      });
      const { code, stdout } = await runCli(["doctor", "--config", dir]);
      expect(code).toBe(10);
      expect(stdout).toMatch(
        new RegExp(`FAIL\\s+port ${squatter.port} \\(frame blue\\)\\s+in use on 127\\.0\\.0\\.1 by another program`),
      );
      expect(stdout).toContain(`lsof -nP -iTCP:${squatter.port}`);
    } finally {
      squatter.stop(true);
    }
  });

  test("a port held by another axe-appliance install fails; one held by this install is ours", async () => {
    const dataDir = tempDir("axe-data");
    const answering = (instance: string) =>
      Bun.serve({
        port: 0,
        hostname: "127.0.0.1",
        fetch: () => Response.json({ status: "ok", service: "axe-frame", color: "blue", instance }),
      });
    const other = answering("0123456789abcdef");
    const ours = answering(instanceId(dataDir));
    try {
      const dir = makeConfigDir({
        appliance: {
          data_dir: dataDir,
          frame: { ports: { blue: other.port, green: ours.port } },
          proxy: { listen: "127.0.0.1:1" },
        },
      });
      const { code, stdout } = await runCli(["doctor", "--config", dir]);
      expect(code).toBe(10);
      expect(stdout).toMatch(
        new RegExp(`FAIL\\s+port ${other.port} \\(frame blue\\)\\s+in use on 127\\.0\\.0\\.1 by another axe-appliance`),
      );
      expect(stdout).toMatch(new RegExp(`OK\\s+port ${ours.port} \\(frame green\\)\\s+in use by this axe-appliance`));
    } finally {
      other.stop(true);
      ours.stop(true);
    }
  });

  test("a service backend that cannot work here fails with the fix; child (what `up` runs) passes", async () => {
    const check = async (backend: string) => {
      const dir = makeConfigDir({ appliance: { deploy: { service_backend: backend } } });
      const { stdout } = await runCli(["doctor", "--json", "--config", dir]);
      return (JSON.parse(stdout) as Array<{ name: string; ok: boolean; detail: string; fix?: string }>).find((c) =>
        c.name.startsWith("service backend"),
      )!;
    };
    expect(await check("child")).toMatchObject({ name: "service backend (child)", ok: true });
    if (process.platform !== "darwin") {
      const launchd = await check("launchd");
      expect(launchd).toMatchObject({ ok: false });
      expect(launchd.fix).toContain("deploy.service_backend: child");
    }
    if (!existsSync("/run/systemd/system")) {
      const systemd = await check("systemd");
      expect(systemd.ok).toBe(false);
      expect(systemd.detail).toContain("not booted with systemd");
      expect(systemd.fix).toContain("deploy.service_backend: child");
    }
  });

  test("a broken config is a FAIL row naming the line, not a crash", async () => {
    const dir = makeConfigDir();
    writeFileSync(join(dir, "appliance.yaml"), "customer: axe\nframe:\n  portz: 1\n");
    const { code, stdout } = await runCli(["doctor", "--config", dir]);
    expect(code).toBe(10);
    expect(stdout).toMatch(/FAIL\s+config\s+.*appliance\.yaml:3: frame\.portz: unknown key/);
  });

  test("the machine's own customer with a TBD tenant is refused", async () => {
    const dir = makeConfigDir({ appliance: { customer: "other" }, customers: undefined });
    const customers = (await Bun.file(join(dir, "customers.yaml")).text()).replace(
      "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
      "TBD",
    );
    writeFileSync(join(dir, "customers.yaml"), customers);
    const { stdout } = await runCli(["doctor", "--config", dir]);
    expect(stdout).toMatch(
      /FAIL\s+config\s+.*customers\.other\.entra\.tenant_id: is TBD, but other is this machine's customer \(.*appliance\.yaml:1\)/,
    );
  });

  test("restic: its version when it answers; missing, failing or hung, a FAIL that says which", async () => {
    const dir = makeConfigDir();
    const shims = tempDir("axe-doctor-restic");
    const restic = async (script: string | undefined) => {
      const bin = join(shims, `bin-${Math.random().toString(36).slice(2)}`);
      mkdirSync(bin);
      if (script) writeFileSync(join(bin, "restic"), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
      const { stdout } = await runCli(["doctor", "--json", "--config", dir], {
        env: { PATH: bin }, // restic only where the test puts it
      });
      const checks = JSON.parse(stdout) as Array<{ name: string; ok: boolean; detail: string; fix?: string }>;
      return checks.find((c) => c.name === "restic")!;
    };
    expect(await restic('echo "restic 0.18.0 compiled with go1.24"')).toMatchObject({
      ok: true,
      detail: "restic 0.18.0 compiled with go1.24",
    });
    expect(await restic(undefined)).toMatchObject({ ok: false, detail: "restic not found on PATH" });
    expect(await restic('echo "restic: broken install" >&2; exit 3')).toMatchObject({
      ok: false,
      detail: "restic version exited 3: restic: broken install",
    });
    const hung = await restic("exec /bin/sleep 60");
    expect(hung.ok).toBe(false);
    expect(hung.detail).toMatch(/^restic version did not finish within 5000 ms \(killed by SIG(TERM|KILL)\)$/);
  }, 60_000);
});
