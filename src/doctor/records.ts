/**
 * `doctor --records`: one check per entity, from src/frame/store/record-check.ts. FAIL lists the
 * records that do not decode (id, collection, why), which search_records skips and get_record refuses.
 */
import { join } from "node:path";
import type { Config } from "../config/load.ts";
import type { Sql } from "../db/connect.ts";
import { DataKeyCache } from "../frame/crypto/data-keys.ts";
import { MASTER_KEY_FILE, MasterKeyring } from "../frame/crypto/master-key.ts";
import { checkRecords } from "../frame/store/record-check.ts";
import type { CheckResult } from "./checks.ts";

/** With the owner connection (`withOwnerDatabase`). */
export async function recordChecks(sql: Sql, config: Config): Promise<CheckResult[]> {
  const keys = new DataKeyCache(new MasterKeyring(join(config.paths.secrets, MASTER_KEY_FILE)));
  const entities = await sql<{ name: string }[]>`select name from meta.entities order by name`;
  const results: CheckResult[] = [];
  for (const { name } of entities) {
    const report = await checkRecords(sql, keys, name);
    if (!report.unreadable.length) {
      results.push({ name: `records:${name}`, ok: true, detail: `${report.checked} records read` });
      continue;
    }
    const listed = report.unreadable.map((r) => `${r.id} (${r.collection}): ${r.problem}`).join("\n");
    results.push({
      name: `records:${name}`,
      ok: false,
      detail: `${report.unreadable.length} of ${report.checked} records do not decode:\n${listed}`,
      fix: "they were changed outside frame: restore them from record_history or a backup, or delete_record them",
    });
  }
  return results;
}
