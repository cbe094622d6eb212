/**
 * Continuous WAL archiving as the cluster sees it: where the spool is and the archive_command that
 * fills it (`axe-appliance backup wal-push "%p" "%f" --config DIR`). The embedded cluster writes
 * these into its settings; for a server at database.url, `backup wal-push --help` and
 * docs/operations.md print the same lines for its operator.
 *
 * @example
 * const archive = archiveSettings(config); // undefined unless backup.wal.enabled
 * archive?.command; // '/opt/axe/bin/axe-appliance backup wal-push "%p" "%f" --config /opt/axe/config'
 */
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { Config } from "../config/load.ts";
import { selfCommand } from "../lib/version.ts";

export interface ArchiveSettings {
  /** The directory wal-push writes into; the account Postgres runs as owns it. */
  spool: string;
  /** archive_command, as Postgres runs it (through /bin/sh, %p and %f substituted). */
  command: string;
  /** archive_timeout in seconds. */
  timeoutSeconds: number;
}

export function walSpool(config: Config): string {
  const spool = config.appliance.backup.wal.spool;
  return isAbsolute(spool) ? spool : join(config.paths.data, spool);
}

/**
 * The program archive_command runs: backup.wal.program, else the installed binary beside the config
 * directory (install.sh's {prefix}/bin), else this process's own. Never a color's release binary:
 * deploys prune those, and archiving would fail with the release gone.
 */
export function archiveProgram(config: Config): string[] {
  const configured = config.appliance.backup.wal.program;
  if (configured) return [configured];
  const installed = join(config.dir, "..", "bin", "axe-appliance");
  return existsSync(installed) ? [installed] : selfCommand();
}

export function archiveSettings(config: Config): ArchiveSettings | undefined {
  const wal = config.appliance.backup.wal;
  if (!wal.enabled) return undefined;
  const argv = [...archiveProgram(config), "backup", "wal-push"].map(shellWord);
  const command = `${argv.join(" ")} "%p" "%f" --config ${shellWord(config.dir)}`;
  return { spool: walSpool(config), command, timeoutSeconds: wal.archive_timeout_seconds };
}

/** One word for /bin/sh, with archive_command's own escape for a literal % (%%). */
function shellWord(word: string): string {
  const sh = /^[\w@+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
  return sh.replaceAll("%", "%%");
}
