/**
 * Bad days for continuous archiving, end to end: the real archiver of a real cluster runs the real
 * `backup wal-push`. A wal-push killed (-9) halfway through a segment: Postgres retries and the
 * segment lands whole. A full disk under the spool: archive_command fails, Postgres keeps the
 * segment, `backup status` is red with the reason; once space is freed archiving catches up. A
 * restore across both from the local tier alone holds every record: no segment went missing.
 *
 * The spool is a small tmpfs (we run as root, as CI does; without root the full-disk test is
 * skipped). To stop wal-push halfway, backup.wal.program is a wrapper that, while a gate file
 * exists, hands wal-push the segment through a FIFO filled halfway (as a stalled disk would).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { connect } from "../../src/db/connect.ts";
import { MAIN } from "../helpers/cli.ts";
import { afterFile, tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";
import {
  archiveNow,
  insertRecords,
  type PitrAppliance,
  pitrAppliance,
  recordSums,
  restoredRecords,
  shipWal,
} from "./pitr-helpers.ts";

const isRoot = process.getuid?.() === 0;
const SEGMENT = 16 * 1024 * 1024;

let app: PitrAppliance;
let spool: string;
let ctl: string;
let mounted = false;

/** Segment names in the spool. */
const spooled = () => readdirSync(spool).filter((n) => /^[0-9A-F]{24}$/.test(n));

/** Writes a little, closes the segment, and returns its name (without waiting for the archiver). */
async function closeSegment(from: number): Promise<string> {
  await insertRecords(app.sql, from, from + 99);
  const [row] = await app.sql<{ name: string }[]>`select pg_walfile_name(pg_switch_wal()) as name`;
  return row!.name;
}

const archiver = async () =>
  (
    await app.sql<{ last_archived_wal: string | null; last_failed_wal: string | null; failed_count: string }[]>`
      select last_archived_wal, last_failed_wal, failed_count from pg_stat_archiver`
  )[0]!;

/**
 * Waits (bounded) until the archiver has pushed `name`. Postgres restarts an archiver whose command
 * died on a signal, and retries a failed segment, on its own within about a minute; a new connection
 * (the postmaster then restarts it) and a new segment (which wakes it) do it sooner, so the probe
 * makes both every few seconds, as a working appliance does anyway.
 */
async function archived(name: string): Promise<void> {
  let nudged = Date.now();
  await waitFor(
    `the archiver to push ${name}`,
    async () => {
      if (((await archiver()).last_archived_wal ?? "") >= name) return true;
      if (Date.now() - nudged > 3000) {
        nudged = Date.now();
        const fresh = connect(app.db.target, { max: 1 }); // a new connection: the postmaster looks at its children
        await fresh`insert into records values (-2, 'nudge') on conflict (id) do update set body = excluded.body || '.'`;
        await fresh`select pg_switch_wal()`;
        await fresh.end({ timeout: 5 });
      }
      return undefined;
    },
    { timeoutMs: 120_000, intervalMs: 200 },
  );
}

const ship = () => shipWal(app);

describe("WAL archiving on bad days", () => {
  beforeAll(async () => {
    const base = tempDir("axe-walfault");
    spool = join(base, "spool");
    mkdirSync(spool, { mode: 0o700 });
    if (isRoot) {
      const mount = spawnSync("mount", ["-t", "tmpfs", "-o", "size=128m,mode=0700", "tmpfs", spool], {
        encoding: "utf8",
      });
      if (mount.status !== 0) throw new Error(`mount tmpfs: ${mount.stderr}`);
      mounted = true;
      afterFile(() => {
        if (mounted) spawnSync("umount", ["-l", spool]);
      });
    }
    // The account Postgres runs as writes the gate's and the pids' files here.
    ctl = join(base, "ctl");
    mkdirSync(ctl);
    chmodSync(ctl, 0o777);
    const wrapper = join(base, "wal-push-wrapper");
    writeFileSync(
      wrapper,
      `#!/bin/sh
# $1 backup, $2 wal-push, $3 %p (relative to the data directory), $4 %f
case "$4" in
????????????????????????)
  if mv "${ctl}/slow" "${ctl}/slow.taken" 2>/dev/null; then
    src="$PWD/$3"
    dir=$(mktemp -d "${ctl}/src.XXXXXX")
    mkdir "$dir/pg_wal"
    mkfifo "$dir/pg_wal/$4"
    (head -c ${SEGMENT / 2} "$src"; exec sleep 300) > "$dir/pg_wal/$4" &
    echo $! > "${ctl}/writer.pid"
    cd "$dir" || exit 1
    echo $$ > "${ctl}/push.pid"
  fi
esac
exec "${process.execPath}" "${MAIN}" "$@"
`,
    );
    chmodSync(wrapper, 0o755);
    app = await pitrAppliance({ wal: { spool, program: wrapper } });
    await insertRecords(app.sql, 1, 200);
    const run = await app.cli(["backup", "run"]);
    if (run.code !== 0) throw new Error(`backup run failed: ${run.stderr}`);
    await archiveNow(app.sql);
    await ship();
  }, 300_000);

  afterAll(async () => {
    for (const pid of ["push.pid", "writer.pid"].map((f) => join(ctl, f)).filter(existsSync))
      spawnSync("kill", ["-9", readFileSync(pid, "utf8").trim()]);
    await app?.stop();
    if (mounted && spawnSync("umount", [spool]).status === 0) mounted = false;
  });

  test("kill -9 of wal-push halfway through a segment: Postgres retries and the segment lands whole", async () => {
    writeFileSync(join(ctl, "slow"), "");
    const name = await closeSegment(1000);
    const temp = await waitFor("wal-push to be halfway through the segment", () =>
      readdirSync(spool).find((n) => n.startsWith(`.${name}.`) && statSync(join(spool, n)).size >= SEGMENT / 4),
    );
    expect(spooled()).not.toContain(name);
    const pid = readFileSync(join(ctl, "push.pid"), "utf8").trim();
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toContain("wal-push");
    expect(spawnSync("kill", ["-9", pid]).status).toBe(0);
    spawnSync("kill", ["-9", readFileSync(join(ctl, "writer.pid"), "utf8").trim()]);
    rmSync(join(ctl, "push.pid"));
    rmSync(join(ctl, "writer.pid"));

    await archived(name);
    expect(spooled()).toContain(name);
    expect(statSync(join(spool, name)).size).toBe(SEGMENT);
    expect(existsSync(join(spool, temp))).toBe(false); // the retry removed what the killed push left
    await ship();
  }, 180_000);

  test.skipIf(!isRoot)(
    "a full disk under the spool: archiving fails, Postgres keeps the segment, status is red with the reason; once space is freed it catches up",
    async () => {
      const { bavail, bsize } = statfsSync(spool);
      const filler = join(spool, "filler");
      // Half a segment of room: wal-push runs out of space halfway through the next one.
      writeFileSync(filler, Buffer.alloc(bavail * bsize - SEGMENT / 2));
      const name = await closeSegment(2000);
      await waitFor(
        "archive_command to fail on the full disk",
        async () => (await archiver()).last_failed_wal === name,
        {
          timeoutMs: 120_000,
          intervalMs: 200,
        },
      );
      // Postgres keeps it: still waiting to be archived, and not in the spool.
      const ready = await app.sql<
        { name: string }[]
      >`select name from pg_ls_archive_statusdir() where name = ${`${name}.ready`}`;
      expect(ready.length).toBe(1);
      expect(spooled()).not.toContain(name);
      const red = await app.cli(["backup", "status"]);
      expect(red.code).toBe(7);
      expect(red.stdout).toContain(`WAL archiving is failing since`);
      expect(red.stdout).toContain(
        `(segment ${name}): no space left on device; Postgres keeps the segments and retries`,
      );

      rmSync(filler);
      const next = await closeSegment(3000); // a new segment wakes the archiver, which retries in order
      await archived(next);
      expect(spooled()).toEqual(expect.arrayContaining([name, next]));
      const green = await app.cli(["backup", "status"]);
      expect(green.stdout).not.toContain("WAL archiving is failing");
      await ship();
    },
    180_000,
  );

  test("a restore across both from the local tier holds every record: no segment went missing", async () => {
    const live = await recordSums(app.sql);
    await archiveNow(app.sql);
    await ship();
    const dir = join(tempDir("axe-walfault"), "restored");
    const restore = await app.cli(["backup", "restore", "--latest", "--to-cluster", dir]);
    expect(restore.stderr).toBe("");
    expect(restore.code).toBe(0);
    const ids = (rows: string[]) => rows.filter((r) => !r.startsWith("-1:") && !r.startsWith("-2:"));
    const restored = ids(await restoredRecords(dir));
    expect(restored.length).toBe(ids(live).length);
    expect(restored).toEqual(ids(live));
  }, 180_000);
});
