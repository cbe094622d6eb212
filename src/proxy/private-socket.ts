/**
 * A Unix socket only root (the proxy's own account) may use: made in a 0700 directory and born
 * 0600 (under umask 0177, so there is no moment where another account may connect). What was at
 * the path before is removed only when it is a socket: a link or a file planted there is refused,
 * never followed or deleted. Used by the admin API and the tunnel's door.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { ProxyError } from "../lib/errors.ts";

/** Removes a socket left by a proxy that is gone (the caller has made sure of that); refuses anything else. */
export function removeStaleSocket(path: string): void {
  let kind: string;
  try {
    const stat = lstatSync(path);
    kind = stat.isSocket() ? "socket" : stat.isSymbolicLink() ? "link" : stat.isDirectory() ? "directory" : "file";
  } catch {
    return; // nothing there
  }
  if (kind !== "socket")
    throw new ProxyError(
      "PROXY_SOCKET_PATH",
      `${path} is a ${kind}, not a socket the proxy left: it is not removed or followed`,
      `see who made it (ls -l ${dirname(path)}); remove it, then start the proxy again`,
    );
  unlinkSync(path);
}

/** Binds a socket at `path` through `bind`, with mode 0600 from its first moment. */
export function bindPrivateSocket<T>(path: string, bind: () => T): T {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  removeStaleSocket(path);
  const previous = process.umask(0o177);
  try {
    const server = bind();
    chmodSync(path, 0o600);
    return server;
  } finally {
    process.umask(previous);
  }
}
