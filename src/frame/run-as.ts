/**
 * What root hands frame.run_as (decision 79), the account blue and green run as: the files a color
 * reads or appends to, made by root for that account, and a way into the directories that hold
 * them, and nothing else. The restic passwords, the ring's ssh key and the release keys beside them
 * stay root's (0600), so a color that is broken into can read its own company's data, as it must,
 * and not its backups, the neighbour's repository or a way to install a release.
 *
 * @example
 * const account = await frameAccount(config);            // undefined: colors run as root
 * if (account) for (const line of await handOver(config, account)) console.log(line);
 */
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { type Config, secretPath } from "../config/load.ts";
import type { Account } from "../lib/account.ts";
import { colorKeyFile, loadColorKey } from "../lib/color-proof.ts";
import { ConfigError } from "../lib/errors.ts";
import { runProgram } from "../lib/program.ts";
import { createSecretFileOnce } from "../lib/secret-file.ts";
import { TOKEN_KEY_FILE } from "./auth/service-tokens.ts";
import { AUDIT_KEY_FILE, AUDIT_KEYS_FILE } from "./crypto/audit-key.ts";
import { anchorPlace } from "./store/audit-anchor-format.ts";
import { APP_PASSWORD_FILE, masterKeyPath } from "./store/open-data.ts";

/** The secret files a color reads: its keys and passwords. */
export function frameSecrets(config: Config): string[] {
  const secrets = config.paths.secrets;
  const { url, password_file } = config.appliance.database;
  return [
    masterKeyPath(config),
    join(secrets, TOKEN_KEY_FILE),
    join(secrets, AUDIT_KEY_FILE),
    join(secrets, AUDIT_KEYS_FILE),
    colorKeyFile(secrets),
    join(secrets, APP_PASSWORD_FILE),
    ...(url && password_file ? [secretPath(config, password_file)] : []),
  ];
}

/** Makes the secrets a color would otherwise make on first need (it may not: the directory is root's). */
export function makeFrameSecrets(config: Config, account?: Account): string[] {
  const made: string[] = [];
  const colorKey = colorKeyFile(config.paths.secrets);
  const existed = lstatOrUndefined(colorKey) !== undefined;
  loadColorKey(config.paths.secrets, account);
  if (!existed) made.push(colorKey);
  const password = join(config.paths.secrets, APP_PASSWORD_FILE);
  if (createSecretFileOnce(password, () => `${randomBytes(24).toString("base64url")}\n`, account)) made.push(password);
  return made;
}

/**
 * Gives `account` the files a color reads or appends to (each 0600, the account's), and its group
 * a way through the directories that hold them (0710), then proves, as that account, that it can
 * read them. Returns one line per change; an existing link or non-file is refused, never followed.
 */
export async function handOver(config: Config, account: Account): Promise<string[]> {
  const changes: string[] = [];
  const anchors = anchorPlace(config).file;
  makeAppendable(anchors, changes);
  const files = [...frameSecrets(config).filter((f) => lstatOrUndefined(f) !== undefined), anchors];
  for (const file of files) {
    const fd = openNoFollow(file, account);
    try {
      const stat = fstatSync(fd);
      if (stat.uid !== account.uid || stat.gid !== account.gid) {
        fchownSync(fd, account.uid, account.gid);
        changes.push(`gave ${file} to ${account.name}`);
      }
      if ((stat.mode & 0o777) !== 0o600) {
        fchmodSync(fd, 0o600);
        changes.push(`gave ${file} mode 0600`);
      }
    } finally {
      closeSync(fd);
    }
  }
  // only the two directories that are the appliance's own: a password_file elsewhere keeps its directory as it is
  for (const dir of [config.paths.secrets, dirname(anchors)]) {
    const stat = lstatSync(dir);
    if (stat.uid !== 0 || stat.gid !== account.gid || (stat.mode & 0o777) !== 0o710) {
      chownSync(dir, 0, account.gid);
      chmodSync(dir, 0o710);
      changes.push(`gave ${account.name}'s group a way through ${dir} (root's, 0710)`);
    }
  }
  await proveReadable(config, account, files);
  return changes;
}

/** The anchors file exists and is the account's before anyone appends (a color or the anchor timer). */
function makeAppendable(file: string, changes: string[]): void {
  if (lstatOrUndefined(file)) return;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const fd = openSync(file, "a", 0o600);
  try {
    if (fstatSync(fd).size === 0) changes.push(`created ${file}`);
  } finally {
    closeSync(fd);
  }
}

/** Reads each file as the account (and the config it starts with), so a path it cannot walk fails here, not in a color. */
async function proveReadable(config: Config, account: Account, files: string[]): Promise<void> {
  const wanted = [join(config.dir, "appliance.yaml"), join(config.dir, "customers.yaml"), ...files];
  const exit = await runProgram(["/bin/sh", "-c", 'for f; do [ -r "$f" ] || echo "$f"; done', "sh", ...wanted], {
    runAs: account,
    deadlineMs: 30_000,
  });
  const unreadable = exit.stdout.split("\n").filter(Boolean);
  if (exit.code === 0 && unreadable.length === 0) return;
  throw new ConfigError(
    "RUN_AS_UNREACHABLE",
    `frame.run_as ${account.name} cannot read ${unreadable.join(", ") || `its files (exit ${exit.code})`}`,
    "each directory on the way must let it pass (chmod o+x, or a group it is in): /opt/axe is 0755 as install.sh makes it",
  );
}

/** The file itself, opened without following a link: what is changed is what was checked. */
function openNoFollow(file: string, account: Account): number {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ELOOP") throw error;
    throw unsafe(file, "a symbolic link", account);
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw unsafe(file, "not a regular file", account);
  }
  return fd;
}

const unsafe = (file: string, what: string, account: Account) =>
  new ConfigError(
    "RUN_AS_UNSAFE",
    `${file} is ${what}; it is not handed to ${account.name}`,
    "replace it with the file itself (the appliance never follows a link among its secrets)",
  );

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
