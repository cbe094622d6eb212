#!/usr/bin/env bun
/**
 * backup benchmark: `axe-appliance backup run --tier local` against the same pipeline run by hand
 * (`pg_dump -Fc | restic backup --stdin`), on the same generated database in the same run, each
 * into a fresh repository per round, the order alternating between rounds. Then an incremental
 * run after a small change: its time and the bytes it added.
 *
 *   bun bench/backup.ts [--gb 1] [--rounds 2] [--restic restic,dist/restic-next/usr/bin/restic]
 *
 * Each restic given (default: `restic` on PATH, and $AXE_RESTIC_NEXT when set: .ci/restic-next
 * provides Debian trixie's 0.18 beside bookworm's 0.14) gets its own rounds against the same
 * database: restic >= 0.17 is the --stdin-from-command path a Mac mini takes, older the pipe.
 *
 * Ours does more than the hand pipeline: figures per table (in the dump's snapshot), the config
 * and state snapshot, retention and a size query. The ratio covers all of it. Beside wall time,
 * the CPU seconds of each side's process tree (the Postgres server's not included): on a shared
 * machine other people's load moves wall time, much less CPU time.
 *
 * Point-in-time restore and RPO under load (issue 17) are bench/backup-pitr.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { libpqEnv } from "../src/db/connect.ts";
import { DUMP_TOOLS, findPostgresTools } from "../src/db/postgres-tools.ts";
import { writeSecretFile } from "../src/lib/secret-file.ts";
import { makeConfigDir } from "../test/helpers/config.ts";
import { freshDatabase, stopTestCluster } from "../test/helpers/postgres.ts";
import { removeTempDirs, tempDir } from "../test/helpers/tmp.ts";

const { values: flags } = parseArgs({
  options: {
    gb: { type: "string", default: "1" },
    rounds: { type: "string", default: "2" },
    restic: { type: "string", default: ["restic", process.env.AXE_RESTIC_NEXT].filter(Boolean).join(",") },
  },
});
const RESTICS = flags.restic.split(",").filter(Boolean);
const TARGET_BYTES = Number(flags.gb) * 1024 ** 3;
const ROUNDS = Number(flags.rounds);
const MAIN = new URL("../src/main.ts", import.meta.url).pathname;

const seconds = (start: number) => (performance.now() - start) / 1000;

function run(
  argv: string[],
  env: Record<string, string> = {},
): { seconds: number; cpu: number; stdout: string; stderr: string } {
  const start = performance.now();
  const child = Bun.spawnSync(argv, {
    env: { ...process.env, AXE_CONFIG_DIR: "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const took = seconds(start);
  if (child.exitCode !== 0)
    throw new Error(`${argv.join(" ")} failed (${child.exitCode}): ${child.stderr.toString().slice(-2000)}`);
  return {
    seconds: took,
    cpu: Number(child.resourceUsage.cpuTime.total) / 1e6,
    stdout: child.stdout.toString(),
    stderr: child.stderr.toString(),
  };
}

/** Seconds of one step from the runner's debug log ("backup step done"). */
function stepSeconds(stderr: string, step: string): number {
  for (const line of stderr.split("\n")) {
    if (!line.includes("backup step done")) continue;
    const entry = JSON.parse(line) as { step: string; seconds: number };
    if (entry.step === step) return entry.seconds;
  }
  throw new Error(`no timing for step ${step} in the runner's log`);
}

async function main() {
  const db = await freshDatabase("bench");
  const started = performance.now();
  await db.sql`create table bench_rows (id bigint primary key, body text not null, n int not null, at timestamptz not null)`;
  let next = 1;
  const batch = 400_000;
  while (Number((await db.sql`select pg_total_relation_size('bench_rows') as s`)[0]!.s) < TARGET_BYTES) {
    await db.sql`insert into bench_rows select i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) || repeat(md5((i % 1000)::text), 4), i % 9973, now() - (i || ' seconds')::interval from generate_series(${next}::bigint, ${next + batch - 1}::bigint) i`;
    next += batch;
  }
  await db.sql`vacuum analyze bench_rows`;
  const size = Number((await db.sql`select pg_database_size(current_database()) as s`)[0]!.s);
  console.log(
    `database: ${(size / 1024 ** 3).toFixed(2)} GiB, ${next - 1} rows, generated in ${seconds(started).toFixed(0)}s`,
  );

  const pgBin = findPostgresTools(DUMP_TOOLS);
  const passDir = mkdtempSync(join(tmpdir(), "bench-pgpass-"));
  const passfile = join(passDir, "pgpass");
  writeSecretFile(passfile, `*:*:*:${db.target.user}:${db.target.password}\n`);
  const handEnv = { ...libpqEnv({ ...db.target, passfile }) };
  const summaries: string[] = [];
  let config = "";
  for (const restic of RESTICS) {
    const version = run([restic, "version"]).stdout.trim().split(" ")[1];
    console.log(`restic ${version} (${restic})`);
    config = makeConfigDir({
      database: db.target,
      appliance: { backup: { restic, ring: { enabled: false }, cold: { volume: tempDir("bench-cold") } } },
    });
    const ratio = measure(restic, config, pgBin, handEnv);
    summaries.push(`restic ${version}: whole-run ratio ${ratio.toFixed(3)}`);
  }
  console.log(`whole-run ratio per restic version: ${summaries.join("; ")}`);

  const incremental = async (what: string, change: () => Promise<unknown>) => {
    await change();
    const r = run([process.execPath, MAIN, "backup", "run", "--tier", "local", "--config", config], {
      AXE_LOG_LEVEL: "warn",
    });
    const status = JSON.parse(readFileSync(join(config, "data", "state", "backup.json"), "utf8")) as {
      tiers: { local: { lastSnapshot: { bytesAdded: number }; size: number } };
    };
    console.log(
      `incremental, ${what}: ${r.seconds.toFixed(1)}s, ${(status.tiers.local.lastSnapshot.bytesAdded / 1024 ** 2).toFixed(1)} MiB added (before compression), repository now ${(status.tiers.local.size / 1024 ** 3).toFixed(2)} GiB`,
    );
  };
  const last = next - 1;
  await incremental("1000 rows inserted, the 100 newest updated", async () => {
    await db.sql`insert into bench_rows select i, md5(i::text), 0, now() from generate_series(${next}::bigint, ${next + 999}::bigint) i`;
    await db.sql`update bench_rows set n = n + 1 where id > ${last - 100}`;
  });
  await incremental(
    `${Math.floor(last / 20000)} rows updated, spread over the table`,
    () => db.sql`update bench_rows set n = n + 1 where id % 20000 = 0`,
  );

  rmSync(passDir, { recursive: true, force: true });
  await db.drop();
}

/** Rounds of ours against the hand pipeline with one restic; returns the whole-run ratio. */
function measure(restic: string, config: string, pgBin: string, handEnv: Record<string, string>): number {
  const results: Array<{ hand: number; ours: number; oursDump: number; handCpu: number; oursCpu: number }> = [];
  for (let round = 0; round < ROUNDS; round++) {
    rmSync(join(config, "data", "backup"), { recursive: true, force: true });
    run([process.execPath, MAIN, "backup", "init", "--config", config]);
    const handRepo = tempDir("bench-hand");
    const handPassword = join(tempDir("bench-hand-pw"), "password");
    writeSecretFile(handPassword, "bench-hand-password\n");
    const resticEnv = {
      RESTIC_REPOSITORY: join(handRepo, "repo"),
      RESTIC_PASSWORD_FILE: handPassword,
      RESTIC_CACHE_DIR: join(handRepo, "cache"),
    };
    run([restic, "init", "-q"], resticEnv);
    const hand = () =>
      run(
        [
          "bash",
          "-c",
          `set -o pipefail; "${pgBin}/pg_dump" -Fc -Z0 --no-password | "${restic}" backup --stdin --stdin-filename frame.dump --host hand -q`,
        ],
        { ...handEnv, ...resticEnv },
      );
    const ours = () => {
      const r = run([process.execPath, MAIN, "backup", "run", "--tier", "local", "--config", config], {
        AXE_LOG_LEVEL: "debug",
      });
      return { ours: r.seconds, oursCpu: r.cpu, oursDump: stepSeconds(r.stderr, "database dump") };
    };
    const r =
      round % 2 === 0
        ? (() => {
            const h = hand();
            return { hand: h.seconds, handCpu: h.cpu, ...ours() };
          })()
        : (() => {
            const o = ours();
            const h = hand();
            return { ...o, hand: h.seconds, handCpu: h.cpu };
          })();
    results.push(r);
    console.log(
      `round ${round + 1} (${round % 2 === 0 ? "hand first" : "ours first"}): hand ${r.hand.toFixed(1)}s, ours ${r.ours.toFixed(1)}s (its dump step ${r.oursDump.toFixed(1)}s), run ratio ${(r.ours / r.hand).toFixed(3)}, dump-step ratio ${(r.oursDump / r.hand).toFixed(3)}; cpu hand ${r.handCpu.toFixed(1)}s, ours ${r.oursCpu.toFixed(1)}s`,
    );
  }
  const hand = results.reduce((s, r) => s + r.hand, 0);
  const ours = results.reduce((s, r) => s + r.ours, 0);
  const oursDump = results.reduce((s, r) => s + r.oursDump, 0);
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  console.log(
    `whole run (dump + figures, config and state, retention): hand ${hand.toFixed(1)}s, ours ${ours.toFixed(1)}s, ratio ${(ours / hand).toFixed(3)} (overhead ${((ours / hand - 1) * 100).toFixed(1)}%), median round ${median(results.map((r) => r.ours / r.hand)).toFixed(3)}`,
  );
  const handCpu = results.reduce((s, r) => s + r.handCpu, 0);
  const oursCpu = results.reduce((s, r) => s + r.oursCpu, 0);
  console.log(
    `cpu seconds (process trees): hand ${handCpu.toFixed(1)}s, ours ${oursCpu.toFixed(1)}s, ratio ${(oursCpu / handCpu).toFixed(3)}`,
  );
  console.log(
    `dump step only (same pipeline + figures in the dump's snapshot): ours ${oursDump.toFixed(1)}s, ratio ${(oursDump / hand).toFixed(3)} (overhead ${((oursDump / hand - 1) * 100).toFixed(1)}%), median round ${median(results.map((r) => r.oursDump / r.hand)).toFixed(3)}`,
  );

  // Incremental runs: a day's typical change (new rows appended, recent rows edited), then edits
  // scattered over the whole table, which touch most of restic's ~1 MiB chunks.
  return ours / hand;
}

try {
  await main();
} finally {
  await stopTestCluster();
  removeTempDirs();
}
