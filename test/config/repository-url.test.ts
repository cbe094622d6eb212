import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/lib/errors.ts";
import { makeConfigDir } from "../helpers/config.ts";

/** loadConfig's error for an appliance.yaml with this backup section, or undefined when it loads. */
function loadError(backup: Record<string, unknown>): Error | undefined {
  const dir = makeConfigDir();
  writeFileSync(join(dir, "appliance.yaml"), stringify({ customer: "axe", backup }));
  try {
    loadConfig({ dir });
    return undefined;
  } catch (error) {
    return error as Error;
  }
}

describe("backup repository URLs (secrets are never in appliance.yaml)", () => {
  test("a repository URL holding a password is refused, naming the key, and the password is not echoed", () => {
    for (const [tier, repository] of [
      ["ring", "rest:https://axe:hunter2-ring@peer.example:8000/axe"],
      ["local", "rest:http://u:hunter2-local@127.0.0.1:8000/x"],
      ["cold", "s3:https://key:hunter2-cold@s3.example/bucket"],
    ] as const) {
      const error = loadError({ [tier]: { repository } });
      expect(error).toBeInstanceOf(ConfigError);
      expect(error!.message).toContain(`backup.${tier}.repository`);
      expect(error!.message).toContain("holds a password");
      expect(error!.message).not.toContain("hunter2");
    }
  });

  test("user names, sftp, IPv6 hosts and paths still load", () => {
    for (const [tier, repository] of [
      ["ring", "sftp:axe-ring@peer.example:/axe"],
      ["ring", "sftp://axe-ring@peer.example:2222/axe"],
      ["ring", "rest:http://[::1]:8000/axe"],
      ["ring", "rest:https://axe@peer.example:8000/axe"],
      ["local", "backup/restic"],
      ["cold", "restic"],
    ] as const)
      expect(loadError({ [tier]: { repository } })).toBeUndefined();
  });
});
