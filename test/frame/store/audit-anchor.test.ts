/**
 * The anchor outside the database: as the database owner (no superuser needed), rewrite the tail of
 * an entity's log and recompute every hash, or cut the tail; the links still hold, but the heads
 * the audit key signed do not, and `verify` names the first row after the last anchor that holds.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { AuditEvent } from "../../../src/frame/audit-sink.ts";
import { initAuditKey, rotateAuditKey } from "../../../src/frame/crypto/audit-key.ts";
import { appendAudit } from "../../../src/frame/store/audit.ts";
import { type AnchorPlace, readAnchors, signAnchor } from "../../../src/frame/store/audit-anchor.ts";
import { startAnchoring } from "../../../src/frame/store/audit-anchoring.ts";
import { verifyAudit } from "../../../src/frame/store/audit-verify.ts";
import { appendLine } from "../../../src/lib/line-file.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { tempDir } from "../../helpers/tmp.ts";
import { waitFor } from "../../helpers/wait.ts";
import { type DataFixture, dataFixture } from "./fixture.ts";

let fx: DataFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

const event = (i: number): AuditEvent => ({
  at: new Date(),
  who: "tid/oid",
  entity: "axe",
  tool: "create_record",
  outcome: "ok",
  durationMs: 2,
  requestId: `r${i}`,
  detail: { record: `rec-${i}`, version: 1 },
});

async function append(count: number, from: number) {
  for (let i = 0; i < count; i++) await appendAudit(fx!.app, event(from + i));
}

function place(): AnchorPlace {
  return {
    file: join(tempDir("axe-state"), "audit-anchors.jsonl"),
    secretsDir: tempDir("axe-secrets"),
    customer: "axe",
  };
}

async function verifyAxe(where: AnchorPlace) {
  const { anchors, problems } = await readAnchors(where);
  expect(problems).toEqual([]);
  const [report] = await verifyAudit(fx!.db.sql, { entity: "axe", anchors });
  return report!;
}

/** What someone with the owner's password can do: triggers off, rows changed, the chain recomputed. */
async function rewriteAsOwner(statements: (tx: any) => Promise<void>) {
  await fx!.db.sql.begin(async (tx) => {
    await tx`alter table entity_axe.audit_log disable trigger user`;
    await statements(tx);
    await tx`alter table entity_axe.audit_log enable trigger user`;
  });
}

async function recomputeFrom(tx: any, seq: number) {
  const rows = await tx`select seq from entity_axe.audit_log where seq >= ${seq} order by seq`;
  for (const { seq: s } of rows)
    await tx`update entity_axe.audit_log as a set
               prev_hash = coalesce((select hash from entity_axe.audit_log where seq = a.seq - 1), repeat('0', 64)),
               hash = meta.audit_hash(
                 coalesce((select hash from entity_axe.audit_log where seq = a.seq - 1), repeat('0', 64)),
                 seq, at, who, token_kind, reason, customer, entity, tool, outcome, status, duration_ms,
                 args_digest, request_id, detail)
             where seq = ${s}`;
}

describe("audit anchors", () => {
  test("a tail rewritten by the owner with every hash recomputed: verify names the first row after the last good anchor", async () => {
    fx = await dataFixture(["axe"]);
    const where = place();
    await initAuditKey(where.secretsDir);
    await append(30, 1);
    await signAnchor(fx.db.sql, where, "timer"); // vouches for rows 1-30
    await append(20, 31);
    await signAnchor(fx.db.sql, where, "timer"); // vouches for rows 1-50
    await append(5, 51);
    const clean = await verifyAxe(where);
    expect(clean.broken).toBeUndefined();
    expect(clean.anchored?.seq).toBe(50);
    expect(clean.unanchored).toBe(5);

    // The last 10 rows (46-55) say someone else did it; every hash after them is recomputed.
    await rewriteAsOwner(async (tx) => {
      await tx`update entity_axe.audit_log set who = 'somebody/else' where seq > 45`;
      await recomputeFrom(tx, 46);
    });
    const [unanchored] = await verifyAudit(fx.db.sql, { entity: "axe" });
    expect(unanchored!.broken).toBeUndefined(); // the links hold: without anchors this is unseen
    const rewritten = await verifyAxe(where);
    expect(rewritten.broken?.seq).toBe(31);
    expect(rewritten.broken?.reason).toMatch(
      /row 50 is not the row the anchor .* signed: rows were rewritten; row 31 is the first row after the last anchor that holds \(.*, row 30\)/,
    );
    expect(rewritten.anchored?.seq).toBe(30);
  });

  test("a cut tail is caught the same way", async () => {
    fx = await dataFixture(["axe"]);
    const where = place();
    await initAuditKey(where.secretsDir);
    await append(30, 1);
    await signAnchor(fx.db.sql, where, "timer");
    await append(20, 31);
    await signAnchor(fx.db.sql, where, "backup");
    await rewriteAsOwner((tx) => tx`delete from entity_axe.audit_log where seq > 40`);
    const cut = await verifyAxe(where);
    expect(cut.broken?.seq).toBe(31);
    expect(cut.broken?.reason).toMatch(
      /the log ends at row 40, but the anchor of .* saw row 50: rows were removed; row 31 is the first row after/,
    );
  });

  test("an entity log never starts after row 1: an archive row the owner appends there does not excuse its removed head", async () => {
    fx = await dataFixture(["axe"]);
    const where = place();
    await initAuditKey(where.secretsDir);
    await append(30, 1);
    await signAnchor(fx.db.sql, where, "timer");
    // The owner records a "cut" of rows 1-20 at the tail (chained like any row), then removes them.
    const [row] = await fx.db.sql`select hash from entity_axe.audit_log where seq = 20`;
    await fx.db.sql`insert into entity_axe.audit_log (at, who, outcome, duration_ms, detail)
                    values (now(), 'cli:root', 'ok', 1, ${fx.db.sql.json({ archive: { through: 20, head_hash: row!.hash } })})`;
    await rewriteAsOwner((tx) => tx`delete from entity_axe.audit_log where seq <= 20`);
    const report = await verifyAxe(where);
    expect(report.broken?.seq).toBe(1);
    expect(report.broken?.reason).toMatch(/rows 1 to 20 are missing/);
  });

  test("an entity whose log an anchor signed is still verified after the owner removes it from meta.entities", async () => {
    fx = await dataFixture(["axe", "labs"]);
    const where = place();
    await initAuditKey(where.secretsDir);
    await appendAudit(fx.app, { ...event(1), entity: "labs" });
    await appendAudit(fx.app, event(2));
    await signAnchor(fx.db.sql, where, "timer");
    await fx.db.sql.begin(async (tx) => {
      await tx`drop schema entity_labs cascade`;
      await tx`delete from meta.data_keys where entity = 'labs'`;
      await tx`delete from meta.entities where name = 'labs'`;
    });
    const { anchors, problems } = await readAnchors(where);
    expect(problems).toEqual([]);
    const reports = await verifyAudit(fx.db.sql, { anchors });
    expect(reports.map((r) => [r.log, r.broken?.seq])).toEqual([
      ["meta", undefined],
      ["axe", undefined],
      ["labs", 1],
    ]);
    expect(reports[2]!.broken!.reason).toMatch(/no entity labs .*the anchor of .* signed its row 1/);
  });

  test("verify recomputes each hash itself: an owner's meta.audit_hash that vouches for changed rows does not fool it", async () => {
    fx = await dataFixture(["axe"]);
    await append(5, 1);
    await fx.db.sql.begin(async (tx) => {
      await tx`create or replace function meta.audit_hash(
        prev_hash text, seq bigint, at timestamptz, who text, token_kind text, reason text, customer text,
        entity text, tool text, outcome text, status int, duration_ms int, args_digest text, request_id text,
        detail jsonb) returns text language sql as $$ select hash from entity_axe.audit_log where seq = $2 $$`;
      await tx`alter table entity_axe.audit_log disable trigger user`;
      await tx`update entity_axe.audit_log set outcome = 'denied' where seq = 3`;
      await tx`alter table entity_axe.audit_log enable trigger user`;
    });
    const [report] = await verifyAudit(fx.db.sql, { entity: "axe" });
    expect(report!.broken).toEqual({ seq: 3, reason: "the row's columns do not match its hash (it was changed)" });
  });

  test("anchors signed before a key rotation still hold; an edited or foreign line is a finding", async () => {
    fx = await dataFixture(["axe"]);
    const where = place();
    const first = await initAuditKey(where.secretsDir);
    expect(first.created).toBe(true);
    expect((await initAuditKey(where.secretsDir)).created).toBe(false);
    await append(3, 1);
    await signAnchor(fx.db.sql, where, "timer");
    const rotated = await rotateAuditKey(where.secretsDir);
    expect(rotated.from).toBe(first.kid);
    expect(rotated.to).not.toBe(first.kid);
    await append(3, 4);
    await signAnchor(fx.db.sql, where, "rotate");
    const { anchors, problems } = await readAnchors(where);
    expect(problems).toEqual([]);
    expect(anchors.map((a) => a.kid)).toEqual([first.kid, rotated.to]);
    expect((await verifyAxe(where)).anchored?.seq).toBe(6);

    // A line whose payload was edited (a head pointed elsewhere), and one signed by a stranger's key.
    const [header, payload, signature] = (await Bun.file(where.file).text()).trim().split("\n")[1]!.split(".");
    const forged = JSON.parse(Buffer.from(payload!, "base64url").toString());
    forged.heads[1].seq = 2;
    appendLine(where.file, `${header}.${Buffer.from(JSON.stringify(forged)).toString("base64url")}.${signature}`, {
      mode: 0o600,
    });
    const stranger = place();
    await initAuditKey(stranger.secretsDir);
    await signAnchor(fx.db.sql, { ...stranger, file: where.file }, "manual");
    const after = await readAnchors(where);
    expect(after.anchors.length).toBe(2);
    expect(after.problems.length).toBe(2);
    expect(after.problems[0]).toMatch(/:3: the signature or content does not hold/);
    expect(after.problems[1]).toMatch(/:4: signed by key .*, which is not in audit-keys.json/);
  });

  test("serve's anchoring: the first color signs at start, the second finds a fresh anchor and waits; both sign when they stop", async () => {
    fx = await dataFixture(["axe"]);
    const where = place();
    const logger = createLogger({ level: "error" });
    const blue = await startAnchoring(fx.db.sql, where, { everyMs: 60_000, logger }); // makes the audit key
    const signed = await waitFor("the start anchor", async () => (await readAnchors(where)).anchors.length === 1, {
      intervalMs: 20,
    });
    expect(signed).toBe(true); // the start anchor
    const green = await startAnchoring(fx.db.sql, where, { everyMs: 60_000, logger });
    await append(2, 1);
    await green.stop();
    await blue.stop();
    const { anchors, problems } = await readAnchors(where);
    expect(problems).toEqual([]);
    expect(anchors.map((a) => [a.reason, a.heads.find((h) => h.log === "axe")!.seq])).toEqual([
      ["timer", 0],
      ["stop", 2],
      ["stop", 2],
    ]);
  });
});
