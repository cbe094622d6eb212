/**
 * The ssh command that restic's sftp backend runs for the ring (`-o sftp.command=...`). Whatever
 * account it reaches and whatever the operator configured, an ssh command carries ConnectTimeout,
 * ServerAliveInterval/CountMax and BatchMode: a peer that accepts TCP but never answers, or stops
 * answering mid-copy, or asks for a password, fails in seconds instead of hanging every later run.
 * With an identity file (backup.ring.identity_file) it offers that key and no other: `-i FILE` and
 * `IdentitiesOnly=yes` unless the operator's command sets IdentitiesOnly itself.
 *
 * @example
 * ringSshCommand("sftp:axe@peer-mini:backup/ring/acme", undefined, timeouts)
 * // "ssh -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o BatchMode=yes -l axe peer-mini -s sftp"
 */
import { basename } from "node:path";

export interface SshTimeouts {
  connect_timeout: number;
  server_alive_interval: number;
  server_alive_count: number;
}

/** The sftp.command for `repository`, or undefined when it is not an sftp repository and none is configured. */
export function ringSshCommand(
  repository: string,
  configured: string | undefined,
  t: SshTimeouts,
  identity?: string,
): string | undefined {
  const options = (have: string[]) => {
    const set = (name: string) => have.some((w) => w.toLowerCase().startsWith(`${name.toLowerCase()}=`));
    const bounds = [
      ["ConnectTimeout", t.connect_timeout],
      ["ServerAliveInterval", t.server_alive_interval],
      ["ServerAliveCountMax", t.server_alive_count],
      ["BatchMode", "yes"],
    ]
      .filter(([name]) => !set(String(name)))
      .flatMap(([name, value]) => ["-o", `${name}=${value}`]);
    if (!identity) return bounds;
    return [...bounds, "-i", identity, ...(set("IdentitiesOnly") ? [] : ["-o", "IdentitiesOnly=yes"])];
  };
  if (configured) {
    const words = configured.trim().split(/\s+/);
    if (basename(words[0] ?? "") !== "ssh") return configured; // not ssh: the operator's own program
    return [words[0]!, ...options(words), ...words.slice(1)].join(" ");
  }
  const target = sftpTarget(repository);
  if (!target) return undefined;
  return [
    "ssh",
    ...options([]),
    ...(target.port ? ["-p", target.port] : []),
    ...(target.user ? ["-l", target.user] : []),
    target.host,
    "-s",
    "sftp",
  ].join(" ");
}

/** `sftp:user@host:path` or `sftp://user@host:port/path`, as restic reads them. */
function sftpTarget(repository: string): { user?: string; host: string; port?: string } | undefined {
  const url = /^sftp:\/\/(?:([^@/]+)@)?([^:/]+)(?::(\d+))?\//.exec(repository);
  if (url) return { user: url[1], host: url[2]!, port: url[3] };
  const short = /^sftp:(?:([^@:]+)@)?([^:]+):/.exec(repository);
  if (short) return { user: short[1], host: short[2]! };
  return undefined;
}
