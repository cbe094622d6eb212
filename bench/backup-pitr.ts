#!/usr/bin/env bun
/**
 * backup benchmark, point in time (issue 17; the PITR section of the backup benchmarks): an
 * appliance on its embedded cluster with WAL archiving on (the real archive_command), a ring peer
 * over a real sshd on loopback, in two parts.
 *
 * 1. Restore time: a generated database of --gb GiB, the daily run (dump + base backup), then the
 *    WAL of an hour at --rate records/s (--rate x 3600 records, one commit each, written as fast as
 *    they go), archived and shipped. `backup restore --latest --to-cluster` (base backup + that WAL)
 *    against `backup restore --snapshot latest --to-database` (the logical restore of the dump) in
 *    the same run, order alternating per round: the ratio.
 * 2. RPO under load: --rate records/s for --minutes, `backup wal-ship` every --ship-seconds (the
 *    timer's 5 minutes by default) and archive_timeout 60 s. Every 5 s, per tier, the age of the
 *    newest record a restore from it reaches (local: the segments archived into the spool; ring: the
 *    newest segment of its last wal-ship), from the WAL position each record's commit was at. Median
 *    and worst per tier; WAL and repository growth per hour.
 *
 *   bun bench/backup-pitr.ts [--gb 1] [--rate 100] [--rounds 1] [--minutes 30] [--ship-seconds 300]
 *
 * The records are written with SQL, not through MCP: a tool call's own WAL (its audit row, the
 * record's history) is larger, so WAL volume here is a lower bound; the RPO does not depend on it
 * (archive_timeout closes a segment long before 100 records/s fill one).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { segmentEnd } from "../src/backup/wal-catalogue.ts";
import { connect } from "../src/db/connect.ts";
import { writeSecretFile } from "../src/lib/secret-file.ts";
import { archiveNow, type PitrAppliance, pitrAppliance } from "../test/backup/pitr-helpers.ts";
import { runCli } from "../test/helpers/cli.ts";
import { freshDatabase, stopTestCluster } from "../test/helpers/postgres.ts";
import { startSshd } from "../test/helpers/sshd.ts";
import { removeTempDirs, tempDir } from "../test/helpers/tmp.ts";

const { values: flags } = parseArgs({
  options: {
    gb: { type: "string", default: "1" },
    rate: { type: "string", default: "100" },
    rounds: { type: "string", default: "1" },
    minutes: { type: "string", default: "30" },
    "ship-seconds": { type: "string", default: "300" },
  },
});
const GB = Number(flags.gb);
const RATE = Number(flags.rate);
const ROUNDS = Number(flags.rounds);
const MINUTES = Number(flags.minutes);
const SHIP_MS = Number(flags["ship-seconds"]) * 1000;

const seconds = (start: number) => (performance.now() - start) / 1000;
const mib = (bytes: number | bigint) => `${(Number(bytes) / 1024 ** 2).toFixed(1)} MiB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? Number.NaN;
const du = (dir: string) => Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);

async function cli(app: PitrAppliance, args: string[], env: Record<string, string> = {}): Promise<number> {
  const start = performance.now();
  const r = await runCli([...args, "--config", app.fx.configDir], { env });
  if (r.code !== 0) throw new Error(`${args.join(" ")} failed (${r.code}): ${r.stderr.slice(-2000)}`);
  return seconds(start);
}

async function walLsn(app: PitrAppliance): Promise<bigint> {
  const [row] = await app.sql<{ lsn: string }[]>`select pg_current_wal_insert_lsn() - '0/0'::pg_lsn as lsn`;
  return BigInt(row!.lsn);
}

/** Part 1: base backup + an hour of WAL against the logical restore, in the same run. */
async function restoreTime(app: PitrAppliance): Promise<void> {
  const started = performance.now();
  await app.sql`create table bulk (id bigint primary key, body text not null, n int not null)`;
  for (
    let next = 1;
    Number((await app.sql`select pg_database_size(current_database()) as s`)[0]!.s) < GB * 1024 ** 3;
  ) {
    await app.sql`insert into bulk select i, md5(i::text) || md5((i * 7)::text) || repeat(md5((i % 1000)::text), 4), i % 9973 from generate_series(${next}::bigint, ${next + 399_999}::bigint) i`;
    next += 400_000;
  }
  await app.sql`vacuum analyze bulk`;
  const size = Number((await app.sql`select pg_database_size(current_database()) as s`)[0]!.s);
  console.log(`database: ${(size / 1024 ** 3).toFixed(2)} GiB, generated in ${seconds(started).toFixed(0)}s`);
  console.log(`daily run (dump + base backup): ${(await cli(app, ["backup", "run", "--tier", "local"])).toFixed(1)}s`);

  const hour = RATE * 3600;
  const from = await walLsn(app);
  const writeStart = performance.now();
  const pool = connect(app.db.target, { max: 4 });
  for (let id = 10_000_000; id < 10_000_000 + hour; id += 400)
    await Promise.all(
      Array.from({ length: 400 }, (_, i) => pool`insert into records values (${id + i}, ${`record ${id + i}`})`),
    );
  await pool.end({ timeout: 5 });
  await archiveNow(app.sql);
  const wal = (await walLsn(app)) - from;
  console.log(
    `an hour of WAL at ${RATE} records/s: ${hour} commits in ${seconds(writeStart).toFixed(0)}s, ${mib(wal)} of WAL`,
  );
  console.log(`wal-ship: ${(await cli(app, ["backup", "wal-ship"])).toFixed(1)}s`);

  const passDir = tempDir("bench-pgpass");
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const pitr = async () => {
      const dir = join(tempDir("bench-pitr"), "restored");
      const took = await cli(app, ["backup", "restore", "--latest", "--to-cluster", dir]);
      rmSync(dir, { recursive: true, force: true });
      return took;
    };
    const logical = async () => {
      const db = await freshDatabase("bench_restore");
      const passfile = join(passDir, "pgpass");
      writeSecretFile(passfile, `*:*:*:${db.target.user}:${db.target.password}\n`);
      const url = `postgres://${db.target.user}@${encodeURIComponent(db.target.host)}:${db.target.port}/${db.target.database}`;
      const took = await cli(app, ["backup", "restore", "--snapshot", "latest", "--to-database", url, "--no-owner"], {
        PGPASSFILE: passfile,
      });
      await db.drop();
      return took;
    };
    let p: number;
    let l: number;
    if (round % 2 === 0) {
      p = await pitr();
      l = await logical();
    } else {
      l = await logical();
      p = await pitr();
    }
    ratios.push(p / l);
    console.log(
      `round ${round + 1} (${round % 2 === 0 ? "pitr first" : "logical first"}): point-in-time restore ${p.toFixed(1)}s, logical restore ${l.toFixed(1)}s, ratio ${(p / l).toFixed(3)}`,
    );
  }
  console.log(`restore time ratio (point in time / logical), median round: ${median(ratios).toFixed(3)}`);
}

/** Part 2: RPO per tier under a steady write load, with wal-ship on its interval. */
async function rpoUnderLoad(app: PitrAppliance): Promise<void> {
  const writer = connect(app.db.target, { max: 1 });
  const commits: Array<{ at: number; lsn: bigint }> = [];
  const start = Date.now();
  const end = start + MINUTES * 60_000;
  const repo = app.fx.localRepo;
  const before = { wal: await walLsn(app), repo: du(repo) };
  let id = 20_000_000;
  const write = (async () => {
    while (Date.now() < end) {
      const due = start + ((id - 20_000_000) * 1000) / RATE;
      if (due > Date.now()) await Bun.sleep(due - Date.now());
      await writer`insert into records values (${id}, ${`record ${id}`})`;
      const [row] = await writer<{ lsn: string }[]>`select pg_current_wal_insert_lsn() - '0/0'::pg_lsn as lsn`;
      commits.push({ at: Date.now(), lsn: BigInt(row!.lsn) });
      id++;
    }
  })();
  let shipping = 0;
  const ship = (async () => {
    for (let next = start + SHIP_MS; next < end; next += SHIP_MS) {
      await Bun.sleep(next - Date.now());
      shipping += await cli(app, ["backup", "wal-ship"]);
    }
  })();
  const samples: Record<"local" | "ring", number[]> = { local: [], ring: [] };
  /** Age (s) at `now` of the newest commit whose WAL lies wholly before `reach`. */
  const ageOfNewest = (reach: bigint, now: number) => {
    let lo = 0;
    let hi = commits.length - 1;
    if (hi < 0 || commits[0]!.lsn > reach) return undefined;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (commits[mid]!.lsn <= reach) lo = mid;
      else hi = mid - 1;
    }
    return (now - commits[lo]!.at) / 1000;
  };
  const sampler = (async () => {
    for (let next = start + 60_000; next < end; next += 5000) {
      await Bun.sleep(next - Date.now());
      const now = Date.now();
      const [a] = await app.sql<{ last: string | null }[]>`select last_archived_wal as last from pg_stat_archiver`;
      const ship = JSON.parse(readFileSync(join(app.fx.stateDir, "wal-ship.json"), "utf8").toString()) as {
        last: Record<string, { newest?: string }>;
      };
      const reach = {
        local: a?.last && /^[0-9A-F]{24}$/.test(a.last) ? segmentEnd(a.last) : undefined,
        ring: ship.last.ring?.newest ? segmentEnd(ship.last.ring.newest) : undefined,
      };
      for (const tier of ["local", "ring"] as const) {
        const age = reach[tier] === undefined ? undefined : ageOfNewest(reach[tier]!, now);
        if (age !== undefined) samples[tier].push(age);
      }
    }
  })();
  await Promise.all([write, ship, sampler]);
  await writer.end({ timeout: 5 });
  const hours = (Date.now() - start) / 3_600_000;
  console.log(
    `RPO under ${RATE} records/s for ${MINUTES} min (${commits.length} commits, archive_timeout 60 s, wal-ship every ${SHIP_MS / 1000} s, ${shipping.toFixed(0)}s spent shipping):`,
  );
  for (const tier of ["local", "ring"] as const) {
    const xs = samples[tier];
    console.log(
      `  ${tier}: median ${median(xs).toFixed(0)} s, worst ${Math.max(...xs).toFixed(0)} s (${xs.length} samples every 5 s)`,
    );
  }
  const wal = (await walLsn(app)) - before.wal;
  console.log(
    `growth per hour at that load: WAL ${mib(Number(wal) / hours)}, local repository ${mib((du(repo) - before.repo) / hours)}, spool now ${mib(du(join(app.fx.dataDir, "wal-spool")))}`,
  );
}

async function main() {
  const sshd = await startSshd();
  const ringDir = join(tempDir("bench-peer"), "ring", "axe");
  const app = await pitrAppliance({
    ring: { repository: `sftp:peer:${ringDir}`, ssh_command: `ssh -F ${sshd.configFile("peer")} peer -s sftp` },
  });
  try {
    if (GB > 0) await restoreTime(app);
    await cli(app, ["backup", "run", "--tier", "all"]); // the ring's base backup, before the RPO part
    if (MINUTES > 0) await rpoUnderLoad(app);
  } finally {
    await app.stop();
    await sshd.stop();
  }
}

try {
  await main();
} finally {
  await stopTestCluster();
  removeTempDirs();
}
