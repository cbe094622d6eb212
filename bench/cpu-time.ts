/**
 * CPU seconds (user + system) of a process and of a Postgres cluster, from /proc: on a shared
 * machine calls/s and p99 swing with the neighbours' load, CPU per call much less. Linux only;
 * elsewhere every reading is NaN and the benchmarks print "-".
 *
 * @example
 * const before = cpuSeconds(server.pid);
 * // ... load ...
 * const usPerCall = ((cpuSeconds(server.pid) - before) / calls) * 1e6;
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const TICKS_PER_SECOND = 100; // USER_HZ on every Linux we run on

/** utime + stime of one process, in seconds; NaN when it cannot be read. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // the name may hold spaces
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** The postmaster of `pgdata` and every backend it started (their CPU stays with them until they exit). */
export function clusterCpuSeconds(pgdata: string): number {
  const pidFile = join(pgdata, "postmaster.pid");
  if (!existsSync(pidFile) || !existsSync("/proc")) return NaN;
  const postmaster = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  let total = cpuSeconds(postmaster);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${entry}/status`, "utf8"))?.[1] === String(postmaster))
        total += cpuSeconds(Number(entry));
    } catch {} // the process ended while we looked
  }
  return total;
}

/** This process's own CPU seconds (the load generator). */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}
