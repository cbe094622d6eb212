import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { appendAudit } from "../../../src/frame/store/audit.ts";
import { runCli } from "../../helpers/cli.ts";
import { makeConfigDir } from "../../helpers/config.ts";
import { freshDatabase, type TestDatabase } from "../../helpers/postgres.ts";

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

describe("keys, entity and audit commands", () => {
  test("keys init never overwrites; entity create/list; keys rotate; audit verify finds a tampered row", async () => {
    db = await freshDatabase("cli");
    const dir = makeConfigDir({ database: db.target });
    const init = await runCli(["keys", "init", "--config", dir]);
    expect(init.stderr).toBe("");
    expect(init.stdout).toMatch(/created .*master\.key \(master key [0-9a-f]{16}\)/);
    const master = join(dir, "secrets", "master.key");
    expect(statSync(master).mode & 0o777).toBe(0o600);
    const key = readFileSync(master, "utf8");
    expect((await runCli(["keys", "init", "--config", dir])).stdout).toMatch(/kept existing .*master\.key/);
    expect(readFileSync(master, "utf8")).toBe(key);

    const created = await runCli(["entity", "create", "axe", "--config", dir]);
    expect(created.stdout).toMatch(/created entity axe/);
    expect(created.stdout).toMatch(/kill (-s )?HUP/); // what makes a running serve accept its tokens
    expect(created.stdout).not.toMatch(/add \{ name: axe \}/); // already in customers.yaml
    expect((await runCli(["entity", "create", "axe", "--config", dir])).stdout).toMatch(/already present/);
    const unlisted = await runCli(["entity", "create", "ops", "--config", dir]);
    expect(unlisted.stdout).toMatch(/add \{ name: ops \} to customer axe's entities in customers.yaml/);
    const bad = await runCli(["entity", "create", "Bad-Name", "--config", dir]);
    expect(bad.code).toBe(2);
    expect((await runCli(["entity", "list", "--json", "--config", dir])).stdout).toContain('"name":"axe"');

    const rotated = await runCli(["keys", "rotate", "--config", dir]);
    expect(rotated.stdout).toMatch(/re-wrapped 4 data keys: master key [0-9a-f]{16} -> [0-9a-f]{16}/); // axe and ops, two keys each
    expect(readFileSync(master, "utf8")).not.toBe(key);

    for (let i = 0; i < 3; i++)
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
    expect(clean.stdout).toMatch(/ok\s+entity_axe\.audit_log\s+3 rows verified/);
    await db.sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`update entity_axe.audit_log set who = 'someone-else' where seq = 2`;
    });
    const broken = await runCli(["audit", "verify", "--entity", "axe", "--config", dir]);
    expect(broken.code).toBe(4);
    expect(broken.stderr).toMatch(/entity_axe\.audit_log is broken at row 2/);
    expect((await runCli(["audit", "verify", "--entity", "nope", "--config", dir])).code).toBe(2);
  }, 180_000); // a dozen CLI runs: 5 s alone, 32 s at load 16
});
