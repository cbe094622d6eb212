/**
 * The postgres account, for tests of what another account on the machine can do: the embedded
 * cluster runs as it, and it stands in for an attacker who holds it (or for the deploy user).
 * Undefined where this machine has none; such tests also need root.
 */
import { spawnSync } from "node:child_process";

export const asRoot = process.getuid?.() === 0;

export const postgresAccount: { uid: number; gid: number } | undefined = (() => {
  const uid = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  return uid.status === 0 ? { uid: Number(uid.stdout), gid: Number(gid.stdout) } : undefined;
})();

/** Runs a shell script as the postgres account, as an attacker who holds that account would. */
export function asPostgres(script: string, ...args: string[]): void {
  const run = spawnSync("/bin/sh", ["-c", script, "sh", ...args], { encoding: "utf8", ...postgresAccount! });
  if (run.status !== 0) throw new Error(`as postgres: ${script}: ${run.stderr}`);
}
