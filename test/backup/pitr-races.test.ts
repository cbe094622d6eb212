/**
 * Two races a loaded machine showed in the point-in-time drill (test/backup/pitr-drill.test.ts, in
 * CI's parallel run). The drill's moment (src/backup/pitr-drill.ts) must be a restore point whose
 * figures are exactly what a replay to it holds: the transactions that could differ are every one
 * the snapshot did not see that had an id before the point, including one whose commit record is
 * written but whose backend has not finished yet, whose id can be above any later snapshot's xmax
 * ("915 rows restored, 914 dumped"). And a replay that stops because the WAL ends before the target
 * must say so, even when the poll's own refused connection is logged after the startup process's
 * FATAL ("failed: the database system is in recovery mode").
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { replayFailure } from "../../src/backup/pitr-cluster.ts";
import { invisibleBefore, makeMoment } from "../../src/backup/pitr-drill.ts";
import { connect } from "../../src/db/connect.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";

test("a replay's failure is the startup process's FATAL, not a refused connection logged after it", () => {
  const log = [
    '2026-11-30 11:20:01.101 UTC [811] LOG:  starting point-in-time recovery to "axe-drill-0a1b2c3d4e"',
    "2026-11-30 11:20:01.340 UTC [811] LOG:  redo done at 0/5000060 system usage: CPU: user: 0.00 s",
    "2026-11-30 11:20:01.340 UTC [811] LOG:  last completed transaction was at log time 2026-11-30 11:19:58.2+00",
    "2026-11-30 11:20:01.341 UTC [811] FATAL:  recovery ended before configured recovery target was reached",
    "2026-11-30 11:20:01.342 UTC [830] FATAL:  the database system is in recovery mode",
    "2026-11-30 11:20:01.350 UTC [809] LOG:  startup process (PID 811) exited with exit code 1",
    "",
  ].join("\n");
  expect(replayFailure(log)).toEqual({
    fatal: "recovery ended before configured recovery target was reached",
    endedEarly: true,
  });
  const refusedOnly = "2026-11-30 11:20:01.342 UTC [830] FATAL:  the database system is starting up\n";
  expect(replayFailure(refusedOnly)).toEqual({ fatal: "the database system is starting up", endedEarly: false });
  expect(replayFailure("")).toEqual({ endedEarly: false });
});

describe("the point-in-time drill's moment", () => {
  test("the window runs from the snapshot's xmax to an id taken after the point, plus the ids it saw running", () => {
    // snapshot xmin 100, xmax 105, 100 and 102 running; an id taken after the point: 108
    expect(invisibleBefore("100:105:100,102", 108n)?.sort()).toEqual(["100", "102", "105", "106", "107"]);
    expect(invisibleBefore("100:105:", 105n)).toEqual([]);
    expect(invisibleBefore("100:105:", 2000n)).toBeUndefined(); // too busy to ask about: another moment
  });

  describe("on a live database", () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await freshDatabase("moment");
      await db.sql`create table records (id int primary key, note text)`;
      await db.sql`insert into records select g, 'before' from generate_series(1, 50) g`;
    });
    afterAll(() => db.drop());

    test("a session idle inside a write transaction does not stop the drill, and its row is not in the figures", async () => {
      const open = connect(db.target, { max: 1 });
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let inside!: () => void;
      const begun = new Promise<void>((resolve) => (inside = resolve));
      const transaction = open.begin(async (tx) => {
        await tx`insert into records values (51, 'uncommitted at the moment')`;
        inside();
        await held; // idle in transaction, with an id, until the moment is taken
      });
      try {
        await begun;
        const moment = await makeMoment(db.target);
        const records = moment.figures.find((f) => f.table.endsWith("records"));
        expect(records?.rows).toBe("50");
      } finally {
        release();
        await transaction;
        await open.end({ timeout: 5 });
      }
      expect((await db.sql`select count(*)::int as n from records`)[0]!.n).toBe(51);
    }, 60_000);
  });
});
