import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { generateReleaseKeyPair } from "../deploy/sign.ts";
import { CONFIG_OPTION, stringFlag, type Command } from "../lib/cli.ts";
import { DeployError } from "../lib/errors.ts";
import { writeSecretFile } from "../lib/secret-file.ts";
import { notBuilt } from "./not-built.ts";

/** `keys release-init --out DIR`: the operator's Ed25519 release key pair (private half 0600, never overwritten). */
export const releaseInitCommand: Command = {
  name: "release-init",
  summary: "make the operator's Ed25519 release key pair",
  usage: "--out DIR",
  details: `
Writes DIR/release.key (PKCS8 PEM, mode 0600; keep it off the customer machines) and
DIR/release.pub (SPKI PEM). Put the public key into customers.yaml as release_public_key, and
sign releases with \`npm run release -- --key-file DIR/release.key\`. Refuses to overwrite a key.`,
  options: { out: { type: "string", value: "DIR", description: "directory for release.key and release.pub" } },
  run: async (inv) => {
    const out = resolve(stringFlag(inv, "out", true));
    const keyFile = join(out, "release.key");
    if (existsSync(keyFile)) throw new DeployError("RELEASE_KEY_EXISTS", `${keyFile} exists; a release key is never overwritten`, "choose another --out, or remove the old key on purpose");
    const pair = await generateReleaseKeyPair();
    writeSecretFile(keyFile, pair.privatePem);
    writeFileSync(join(out, "release.pub"), pair.publicPem, { mode: 0o644 });
    const indented = pair.publicPem.trim().split("\n").map((l) => `  ${l}`).join("\n");
    process.stdout.write(`wrote ${keyFile} (0600) and ${join(out, "release.pub")}; key id ${pair.kid}\n\nadd to customers.yaml:\n\nrelease_public_key: |\n${indented}\n`);
  },
};

export const deployCommand: Command = {
  name: "deploy",
  summary: "receive signed releases (SSH forced command), push them, roll back",
  subcommands: [
    notBuilt("receive", "read a signed release on stdin, stage it on the passive color, gate, switch", "[--config DIR]", "deploy", { config: CONFIG_OPTION }),
    notBuilt("push", "send a release to a customer's machine over ssh", "--to CUSTOMER|--all [--release DIR]", "deploy"),
    notBuilt("rollback", "switch back to the warm standby color", "[--config DIR]", "deploy", { config: CONFIG_OPTION }),
    notBuilt("status", "live and standby releases", "[--config DIR] [--json]", "deploy", { config: CONFIG_OPTION }),
    notBuilt("history", "the deploy journal", "[--config DIR] [--json]", "deploy", { config: CONFIG_OPTION }),
  ],
};
