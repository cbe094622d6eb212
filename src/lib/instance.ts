/**
 * Which installation a running process belongs to: a digest of its data directory's real path.
 * Each /healthz says it, so `doctor` (and install.sh's port check) can tell this appliance's
 * process on a port from another axe-appliance's (another prefix, another customer). Not a
 * secret: it names no path, and only says "same install" or "not".
 */
import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";

export function instanceId(dataDir: string): string {
  let path = dataDir;
  try {
    path = realpathSync(dataDir);
  } catch {
    // not created yet: the path as configured
  }
  return createHash("sha256").update(path).digest("hex").slice(0, 16);
}
