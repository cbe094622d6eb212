import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Config, loadConfig } from "../config/load.ts";
import { frameAccount } from "../config/run-as.ts";
import { CONFIG_OPTION, type Command, stringFlag } from "../lib/cli.ts";
import { type HeldLock, tryAcquireLock } from "../lib/lock-file.ts";
import { releaseInitCommand } from "./deploy.ts";
import { withOwnerDatabase } from "./frame-db.ts";

/** Two rotations at once would each write master.key.next and rename it over the other's. */
async function holdRotationLock(config: Config): Promise<HeldLock> {
  const path = join(config.paths.run, "keys.lock");
  const attempt = tryAcquireLock(path, { who: "keys rotate" });
  if (attempt.acquired) return attempt.lock;
  const { KeyError } = await import("../frame/crypto/errors.ts");
  throw new KeyError(
    "KEYS_ROTATING",
    `another \`keys rotate\` is running (pid ${attempt.holder.pid}, since ${attempt.holder.startedAt})`,
    `wait for it to finish; if pid ${attempt.holder.pid} is not axe-appliance, remove ${path}`,
  );
}

export const keysCommand: Command = {
  name: "keys",
  summary: "the master key (PII), the token key, the audit key and the release signing key",
  subcommands: [
    {
      name: "init",
      summary: "create the master, token and audit keys (0600, never overwritten); hand them to frame.run_as",
      usage: "[--config DIR]",
      details: `
Writes {secrets_dir}/master.key (wraps every entity's data keys), {secrets_dir}/token.key (keys the
service-token hashes) and {secrets_dir}/audit.key (Ed25519: signs the audit chains' heads; its public
half goes to audit-keys.json), and the color key and the app role's password that blue and green
would otherwise make on first need. An existing file is kept as it is. Back them up with the
database: without master.key, encrypted fields cannot be read; without audit-keys.json, anchors
cannot be checked.

With frame.run_as set (run as root): the files blue and green read become that account's (0600),
as does {data_dir}/state/audit-anchors.jsonl, which they append to; secrets_dir and the state
directory become root's with mode 0710 and that account's group, so it can open its own files by
name and no others (the restic passwords and the ring key stay root's). It then checks, as that
account, that it can read them. Run it again after changing frame.run_as.`,
      options: { config: CONFIG_OPTION },
      run: async (inv) => {
        const config = loadConfig({ dir: stringFlag(inv, "config") });
        const [{ loadTokenKey, TOKEN_KEY_FILE }, { initMasterKey, readMasterKey }, { masterKeyPath }, audit, runAs] =
          await Promise.all([
            import("../frame/auth/service-tokens.ts"),
            import("../frame/crypto/master-key.ts"),
            import("../frame/store/open-data.ts"),
            import("../frame/crypto/audit-key.ts"),
            import("../frame/run-as.ts"),
          ]);
        const account = await frameAccount(config);
        const master = masterKeyPath(config);
        const tokenFile = join(config.paths.secrets, TOKEN_KEY_FILE);
        const tokenExisted = existsSync(tokenFile);
        const created = initMasterKey(master, account);
        loadTokenKey(config.paths.secrets, account);
        console.log(`${created ? "created" : "kept existing"} ${master} (master key ${readMasterKey(master).id})`);
        console.log(`${tokenExisted ? "kept existing" : "created"} ${tokenFile}`);
        const auditKey = await audit.initAuditKey(config.paths.secrets, account);
        console.log(
          `${auditKey.created ? "created" : "kept existing"} ${join(config.paths.secrets, audit.AUDIT_KEY_FILE)} (audit key ${auditKey.kid})`,
        );
        for (const file of runAs.makeFrameSecrets(config, account)) console.log(`created ${file}`);
        if (account) for (const line of await runAs.handOver(config, account)) console.log(line);
      },
    },
    {
      name: "rotate",
      summary: "re-wrap every data key under a new master key while serving (--audit: a new audit key)",
      usage: "[--audit] [--config DIR]",
      details: `
Writes the new key to master.key.next, re-wraps every entity's data keys in one transaction (which
also appends the rotation to meta.audit_log), then renames master.key.next over master.key. Blue and
green keep serving: the data keys themselves do not change, and a server that needs to unwrap one
later finds the new master key by its id. If the command is interrupted, run it again: it resumes
with the same new key. One rotation at a time: a second one is refused while
{data_dir}/run/keys.lock names a running rotation.

--audit rotates the audit key instead: the old key signs the chain heads a last time, the new one
replaces audit.key (the old key is retired in audit-keys.json and gone from disk), the rotation is
recorded in meta.audit_log, and the new key signs the heads. Anchors signed earlier still verify.
Running servers pick the new key up at their next anchor.`,
      options: {
        audit: { type: "boolean", description: "rotate the audit key (anchors) instead of the master key" },
        config: CONFIG_OPTION,
      },
      run: async (inv) => {
        const dir = stringFlag(inv, "config");
        const lock = await holdRotationLock(loadConfig({ dir }));
        try {
          await withOwnerDatabase(dir, async (sql, config) => {
            const [{ rotateMasterKey, rotateAuditKeyWithAnchors }, { masterKeyPath }, { operatorName }] =
              await Promise.all([
                import("../frame/crypto/rotate.ts"),
                import("../frame/store/open-data.ts"),
                import("./audit.ts"),
              ]);
            if (inv.values.audit) {
              const { anchorPlace } = await import("../frame/store/audit-anchor.ts");
              const fileOwner = await frameAccount(config); // the new key is the colors' to read from the start
              const place = { ...anchorPlace(config), ...(fileOwner ? { fileOwner } : {}) };
              const rotated = await rotateAuditKeyWithAnchors(sql, place, operatorName());
              console.log(`audit key ${rotated.from} -> ${rotated.to}; the heads are signed with both`);
              console.log("back up audit-keys.json now: it holds every public key that signed anchors");
              return;
            }
            const fileOwner = await frameAccount(config);
            const result = await rotateMasterKey(sql, masterKeyPath(config), operatorName(), fileOwner);
            console.log(`re-wrapped ${result.rewrapped} data keys: master key ${result.from} -> ${result.to}`);
            console.log("running servers need no restart; back up the new master.key now");
          });
        } finally {
          lock.release();
        }
      },
    },
    releaseInitCommand,
  ],
};
