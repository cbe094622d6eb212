import { describe, expect, test } from "bun:test";
import { ringSshCommand } from "../../src/backup/ssh-command.ts";
import { runCli } from "../helpers/cli.ts";
import { backupFixture } from "../helpers/restic.ts";

const timeouts = { connect_timeout: 10, server_alive_interval: 15, server_alive_count: 4 };
const bounded = "-o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o BatchMode=yes";

describe("the ring's ssh command", () => {
  test("generated for an sftp repository, whatever the account, with the timeouts that end a hung peer", () => {
    expect(ringSshCommand("sftp:ring@peer-mini:backup/ring/acme", undefined, timeouts)).toBe(
      `ssh ${bounded} -l ring peer-mini -s sftp`,
    );
    expect(ringSshCommand("sftp://ring-acme@peer-mini:2222/ring", undefined, timeouts)).toBe(
      `ssh ${bounded} -p 2222 -l ring-acme peer-mini -s sftp`,
    );
    expect(ringSshCommand("sftp:peer-mini:/srv/ring", undefined, timeouts)).toBe(`ssh ${bounded} peer-mini -s sftp`);
    expect(ringSshCommand("rest:http://peer:8000/acme", undefined, timeouts)).toBeUndefined();
  });

  test("an operator's ssh command gets the options it does not set; another program is left alone", () => {
    expect(ringSshCommand("sftp:peer:ring", "ssh -F /opt/axe/config/ssh_config peer -s sftp", timeouts)).toBe(
      `ssh ${bounded} -F /opt/axe/config/ssh_config peer -s sftp`,
    );
    expect(ringSshCommand("sftp:peer:ring", "/usr/bin/ssh -o connecttimeout=3 peer -s sftp", timeouts)).toBe(
      "/usr/bin/ssh -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o BatchMode=yes -o connecttimeout=3 peer -s sftp",
    );
    expect(ringSshCommand("sftp:peer:ring", "my-tunnel --sftp", timeouts)).toBe("my-tunnel --sftp");
  });
  test("a ring identity file goes in as -i with IdentitiesOnly, generated or configured; the operator's IdentitiesOnly stays", () => {
    const key = "/opt/axe/config/secrets/ring_ed25519";
    const only = `-i ${key} -o IdentitiesOnly=yes`;
    expect(ringSshCommand("sftp:axe-ring@peer-mini:/acme", undefined, timeouts, key)).toBe(
      `ssh ${bounded} ${only} -l axe-ring peer-mini -s sftp`,
    );
    expect(ringSshCommand("sftp:peer:ring", "ssh -F /opt/axe/config/ssh_config peer -s sftp", timeouts, key)).toBe(
      `ssh ${bounded} ${only} -F /opt/axe/config/ssh_config peer -s sftp`,
    );
    expect(ringSshCommand("sftp:peer:ring", "ssh -o IdentitiesOnly=no peer -s sftp", timeouts, key)).toBe(
      `ssh ${bounded} -i ${key} -o IdentitiesOnly=no peer -s sftp`,
    );
  });
  test("an identity file that no ssh would carry is a configuration error, not a key silently unused", async () => {
    for (const ring of [
      { ssh_command: "my-tunnel --sftp", identity_file: "ring_ed25519" },
      { repository: "rest:http://127.0.0.1:9/axe", ssh_command: "", identity_file: "ring_ed25519" },
    ]) {
      const fx = backupFixture({ ring });
      const run = await runCli(["backup", "status", "--config", fx.configDir]);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain("backup.ring.identity_file is set, but the ring does not connect with ssh");
    }
  }, 60_000);
});
