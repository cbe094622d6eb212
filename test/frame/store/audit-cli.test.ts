/**
 * The operator's commands around the audit log, run as the real CLI: keys init makes the audit key,
 * audit anchor signs, keys rotate --audit rotates, audit verify holds every chain against the
 * anchors, audit archive cuts meta.audit_log into a file that audit verify --archive checks.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../../src/config/load.ts";
import { appendAudit } from "../../../src/frame/store/audit.ts";
import { chainHash } from "../../../src/frame/store/audit-hash.ts";
import { checkAuditAnchors } from "../../../src/status/audit-check.ts";
import { runCli } from "../../helpers/cli.ts";
import { makeConfigDir } from "../../helpers/config.ts";
import { freshDatabase, type TestDatabase } from "../../helpers/postgres.ts";
import { tempDir } from "../../helpers/tmp.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

/** The rows of an archive file (after its header line). */
const verifyLines = async (file: string) =>
  readFileSync(file, "utf8")
    .trimEnd()
    .split("\n")
    .slice(1)
    .map((line) => JSON.parse(line) as { seq: string; hash: string });

const ok = async (args: string[]) => {
  const result = await runCli(args);
  if (result.code !== 0) throw new Error(`${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
};

/** `fresh` migrated, with its keys and config; `refusal` adds a meta row (an anonymous 401) at a time. */
async function migrated(
  fresh: TestDatabase,
): Promise<{ dir: string; refusal: (at: string, reason: string) => Promise<unknown> }> {
  const dir = makeConfigDir({ database: fresh.target });
  await ok(["keys", "init", "--config", dir]);
  await ok(["db", "migrate", "--config", dir]);
  const refusal = (at: string, reason: string) =>
    fresh.sql`insert into meta.audit_log (at, who, reason, outcome, status, duration_ms)
              values (${at}, 'anonymous', ${reason}, 'refused', 401, 1)`;
  return { dir, refusal };
}

describe("audit commands", () => {
  test("keys init makes the audit key; anchor, rotate --audit and verify; a rewritten tail fails verify by row", async () => {
    db = await freshDatabase("auditcli");
    const dir = makeConfigDir({ database: db.target });
    expect(await ok(["keys", "init", "--config", dir])).toMatch(/created .*audit\.key \(audit key [\w-]{43}\)/);
    expect(statSync(join(dir, "secrets", "audit.key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "secrets", "audit-keys.json")).mode & 0o777).toBe(0o600);
    expect(await ok(["keys", "init", "--config", dir])).toMatch(/kept existing .*audit\.key/);
    await ok(["entity", "create", "axe", "--config", dir]);
    const [created] = await db.sql`select who, tool, entity from meta.audit_log`;
    expect(created).toEqual({ who: expect.stringMatching(/^cli:/), tool: "entity create", entity: "axe" });

    for (let i = 0; i < 20; i++)
      await appendAudit(db.sql, {
        at: new Date(),
        who: "dev",
        entity: "axe",
        tool: `t${i}`,
        outcome: "ok",
        durationMs: 1,
      });
    const config = loadConfig({ dir });
    expect(checkAuditAnchors(config).level).toBe("warn"); // status: no anchor yet
    expect(await ok(["audit", "anchor", "--config", dir])).toMatch(/signed meta #1, axe #20 at /);
    expect(checkAuditAnchors(config)).toEqual({
      name: "audit",
      level: "ok",
      summary: "last anchor 0 min ago (manual): meta #1, axe #20",
    });
    expect(checkAuditAnchors(config, new Date(Date.now() + 3_600_000)).summary).toMatch(
      /^last anchor 60 min ago .* rows since are not covered by a signature/,
    );
    const rotated = await ok(["keys", "rotate", "--audit", "--config", dir]);
    expect(rotated).toMatch(/audit key [\w-]{43} -> [\w-]{43}/);
    const [rotation] = await db.sql`select tool, detail from meta.audit_log where tool = 'keys rotate --audit'`;
    expect(rotation!.detail.audit_key.from).not.toBe(rotation!.detail.audit_key.to);
    await ok(["keys", "rotate", "--config", dir]); // the master key: its row commits with the re-wrap
    const [master] = await db.sql`select detail from meta.audit_log where tool = 'keys rotate'`;
    expect(master!.detail.master_key.rewrapped).toBe(2);
    for (let i = 20; i < 25; i++)
      await appendAudit(db.sql, {
        at: new Date(),
        who: "dev",
        entity: "axe",
        tool: `t${i}`,
        outcome: "ok",
        durationMs: 1,
      });

    const clean = await runCli(["audit", "verify", "--config", dir]);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/ok\s+meta\.audit_log\s+3 rows verified; anchored through row 2 \(.*\), 1 row since/);
    expect(clean.stdout).toMatch(
      /ok\s+entity_axe\.audit_log\s+25 rows verified; anchored through row 20 \(.*\), 5 rows since/,
    );

    // As the owner: the last 10 rows of axe's log now say someone else did it, every hash recomputed.
    await db.sql.begin(async (tx) => {
      await tx`alter table entity_axe.audit_log disable trigger user`;
      await tx`update entity_axe.audit_log set who = 'somebody' where seq > 15`;
      for (let seq = 16; seq <= 25; seq++)
        await tx`update entity_axe.audit_log as a set
                   prev_hash = (select hash from entity_axe.audit_log where seq = a.seq - 1),
                   hash = meta.audit_hash((select hash from entity_axe.audit_log where seq = a.seq - 1), seq, at, who,
                     token_kind, reason, customer, entity, tool, outcome, status, duration_ms, args_digest, request_id, detail)
                 where seq = ${seq}`;
      await tx`alter table entity_axe.audit_log enable trigger user`;
    });
    const broken = await runCli(["audit", "verify", "--config", dir]);
    expect(broken.code).toBe(4);
    expect(broken.stdout).toMatch(/BROKEN\s+entity_axe\.audit_log\s+0 rows verified; row 1: row 20 is not the row/);
    expect(broken.stderr).toMatch(
      /entity_axe\.audit_log is broken at row 1: .*rows were rewritten; row 1 is the first row after the start of the log/,
    );
  }, 120_000);

  test("audit archive moves old meta rows into a file, records the cut in the chain; verify checks both", async () => {
    db = await freshDatabase("auditcli");
    const { dir, refusal: insert } = await migrated(db);
    for (let i = 0; i < 30; i++) await insert(`2025-0${1 + (i % 3)}-10T12:00:00Z`, `old_${i}`);
    await ok(["audit", "anchor", "--config", dir]); // vouches for rows 1-30, which will be archived
    for (let i = 0; i < 5; i++) await insert("2026-06-01T12:00:00Z", `new_${i}`);
    const file = join(tempDir("axe-archive"), "meta-2025.jsonl");

    const bad = await runCli(["audit", "archive", "--before", "soon", "--to", file, "--config", dir]);
    expect(bad.code).toBe(2);
    const archived = await ok(["audit", "archive", "--before", "2026-01-01", "--to", file, "--config", dir]);
    expect(archived).toMatch(
      /archived rows 1 to 30 \(30\) of meta\.audit_log into .*meta-2025\.jsonl \(sha256 [0-9a-f]{64}\)/,
    );
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const [left] =
      await db.sql`select min(seq)::int as first, max(seq)::int as last, count(*)::int as n from meta.audit_log`;
    expect(left).toEqual({ first: 31, last: 36, n: 6 }); // 5 new rows and the row recording the cut
    const again = await runCli(["audit", "archive", "--before", "2026-01-01", "--to", file, "--config", dir]);
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(/exists; an archive is never overwritten/);

    const verify = await runCli(["audit", "verify", "--config", dir]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/ok\s+meta\.audit_log\s+6 rows verified/);
    const checked = await runCli(["audit", "verify", "--archive", file, "--config", dir]);
    expect(checked.stdout).toMatch(/ok\s+.*meta-2025\.jsonl\s+30 rows verified; anchored through row 30/);
    expect(checked.stdout).toMatch(/meta\.audit_log row 36 records this cut and this file's sha256/);
    expect(checked.code).toBe(0);

    // One archived row changed in the file: the file no longer verifies.
    const lines = readFileSync(file, "utf8").split("\n");
    lines[5] = lines[5]!.replace('"old_4"', '"old_X"');
    const edited = join(tempDir("axe-archive"), "edited.jsonl");
    writeFileSync(edited, lines.join("\n"));
    const tampered = await runCli(["audit", "verify", "--archive", edited, "--config", dir]);
    expect(tampered.code).toBe(4);
    expect(tampered.stdout).toMatch(/BROKEN .* row 5: the row's columns do not match its hash/);

    // The database owner does what archive does, without the file and without the audit key: an archive
    // row of its own naming rows 31-33 (chained like any row), and those rows deleted. No anchor signed that cut.
    const [head] = await db.sql`select hash from meta.audit_log where seq = 33`;
    await db.sql.begin(async (tx) => {
      await tx`insert into meta.audit_log (at, who, tool, outcome, duration_ms, detail)
               values (now(), 'cli:root', 'audit archive', 'ok', 1,
                       ${tx.json({ archive: { from: 31, through: 33, rows: 3, head_hash: head!.hash, file_sha256: "0".repeat(64) } })})`;
      await tx`select set_config('axe.audit_archive_through', '33', true)`;
      await tx`delete from meta.audit_log where seq <= 33`;
    });
    const forged = await runCli(["audit", "verify", "--config", dir]);
    expect(forged.code).toBe(4);
    expect(forged.stderr).toMatch(
      /meta\.audit_log is broken at row 1: rows 1 to 33 are missing; .*no anchor signed that cut/,
    );

    // Rows removed from the head without an archive row that records the cut: verify says so.
    await db.sql.begin(async (tx) => {
      await tx`alter table meta.audit_log disable trigger user`;
      await tx`delete from meta.audit_log where seq <= 35`;
      await tx`alter table meta.audit_log enable trigger user`;
    });
    const cut = await runCli(["audit", "verify", "--config", dir]);
    expect(cut.code).toBe(4);
    expect(cut.stderr).toMatch(/meta\.audit_log is broken at row 1: rows 1 to 35 are missing, and no archive row/);
    expect(existsSync(file)).toBe(true);
  }, 120_000);
  test("archiving every row keeps the chain going: the row recording the cut links to the last archived row", async () => {
    db = await freshDatabase("auditcli");
    const { dir, refusal } = await migrated(db);
    for (let i = 0; i < 10; i++) await refusal("2025-03-10T12:00:00Z", `old_${i}`);
    await ok(["audit", "anchor", "--config", dir]); // vouches for rows 1-10
    const file = join(tempDir("axe-archive"), "all.jsonl");
    // A date after the newest row: every row goes (retention run late, or a typo in the year).
    expect(await ok(["audit", "archive", "--before", "2099-01-01", "--to", file, "--config", dir])).toMatch(
      /archived rows 1 to 10 \(10\)/,
    );
    const [marker] = await db.sql`select seq::int as seq, prev_hash from meta.audit_log where tool = 'audit archive'`;
    const [last] = (await verifyLines(file)).slice(-1);
    expect(marker).toEqual({ seq: 11, prev_hash: last!.hash }); // not a new chain from row 1 and the genesis hash
    const verify = await runCli(["audit", "verify", "--config", dir]);
    expect(verify.stderr).toBe("");
    expect(verify.stdout).toMatch(/ok\s+meta\.audit_log\s+1 rows verified/);
    expect(verify.code).toBe(0);
    expect((await runCli(["audit", "verify", "--archive", file, "--config", dir])).code).toBe(0);
  }, 120_000);

  test("verify --archive holds the file against the signed cut, also after the row recording the cut was archived", async () => {
    db = await freshDatabase("auditcli");
    const { dir, refusal: insert } = await migrated(db);
    for (let i = 0; i < 30; i++) await insert("2025-02-10T12:00:00Z", `old_${i}`);
    for (let i = 0; i < 5; i++) await insert("2026-06-01T12:00:00Z", `new_${i}`);
    const first = join(tempDir("axe-archive"), "2025.jsonl");
    await ok(["audit", "archive", "--before", "2026-01-01", "--to", first, "--config", dir]); // rows 1-30, cut row 36
    for (let i = 0; i < 3; i++) await insert("2030-01-01T12:00:00Z", `later_${i}`);
    const second = join(tempDir("axe-archive"), "to-2029.jsonl");
    await ok(["audit", "archive", "--before", "2029-01-01", "--to", second, "--config", dir]); // rows 31-36: the cut row too
    expect((await runCli(["audit", "verify", "--config", dir])).code).toBe(0);

    const clean = await runCli(["audit", "verify", "--archive", first, "--config", dir]);
    expect(clean.stdout).toMatch(/the audit key signed this cut and this file's sha256/);
    expect(clean.code).toBe(0);

    // The first file swapped: its last row says something else, its hash recomputed, its header to match.
    const lines = readFileSync(first, "utf8").trimEnd().split("\n");
    const row = JSON.parse(lines[30]!);
    row.reason = "nothing_happened";
    row.hash = chainHash(row);
    const header = { ...JSON.parse(lines[0]!), head_hash: row.hash };
    const swapped = join(tempDir("axe-archive"), "swapped.jsonl");
    writeFileSync(swapped, `${[JSON.stringify(header), ...lines.slice(1, 30), JSON.stringify(row)].join("\n")}\n`);
    const checked = await runCli(["audit", "verify", "--archive", swapped, "--config", dir]);
    expect(checked.stderr).toMatch(/is not the archive the audit key signed/);
    expect(checked.code).toBe(4);
  }, 120_000);
});
