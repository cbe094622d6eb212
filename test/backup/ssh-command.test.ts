import { describe, expect, test } from "bun:test";
import { ringSshCommand } from "../../src/backup/ssh-command.ts";

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
});
