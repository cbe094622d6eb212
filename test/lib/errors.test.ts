/**
 * One style for error codes: every AppError's `code` is UPPER_SNAKE_CASE. The errors whose name
 * clients read (frame's refusals and tool errors) carry it a second time as `reason`, in the
 * lower_snake_case clients have always seen: the HTTP body's `reason`, the audit row's, the metric
 * label's. `code` is for us (logs, programs), `reason` is the wire value and never changes.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { IdentifiedRefusal } from "../../src/frame/auth/entra-claims.ts";
import { DataError } from "../../src/frame/store/errors.ts";
import { ToolError } from "../../src/frame/tools/registry.ts";
import { AuthError, EXIT } from "../../src/lib/errors.ts";

const SRC = join(import.meta.dir, "..", "..", "src");
const UPPER = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/;
const LOWER = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
/** The errors constructed from their wire reason; every other AppError from its code. */
const BY_REASON = new Set(["AuthError", "IdentifiedRefusal", "DataError", "ToolError"]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

describe("error codes", () => {
  test("every code written in src is UPPER_SNAKE, every reason lower_snake", () => {
    const construction = /new (\w+Error|IdentifiedRefusal)\(\s*"([^"]*)"/g;
    const seen = { codes: 0, reasons: 0 };
    const offenders: string[] = [];
    for (const file of sources(SRC))
      for (const [, kind, literal] of readFileSync(file, "utf8").matchAll(construction)) {
        if (kind === "Error" || kind === "TypeError" || kind === "ProgramStartError") continue; // not AppErrors
        const byReason = BY_REASON.has(kind!);
        seen[byReason ? "reasons" : "codes"]++;
        if (!(byReason ? LOWER : UPPER).test(literal!))
          offenders.push(
            `${relative(SRC, file)}: new ${kind}("${literal}"): expected ${byReason ? "lower" : "UPPER"}_SNAKE`,
          );
      }
    expect(seen.codes).toBeGreaterThan(50); // the scan finds them (a broken pattern would find none)
    expect(seen.reasons).toBeGreaterThan(20);
    expect(offenders).toEqual([]);
  });

  test("an error built from its reason keeps the reason for the wire and has an UPPER_SNAKE code", () => {
    const expired = new AuthError("token_expired", "the token has expired", 401);
    expect({ code: expired.code, reason: expired.reason, status: expired.status, exit: expired.exitCode }).toEqual({
      code: "TOKEN_EXPIRED",
      reason: "token_expired",
      status: 401,
      exit: EXIT.auth,
    });
    const refused = new IdentifiedRefusal("other_customer_domain", "not yours", "tid/oid");
    expect([refused.code, refused.reason, refused.status, refused.subject]).toEqual([
      "OTHER_CUSTOMER_DOMAIN",
      "other_customer_domain",
      403,
      "tid/oid",
    ]);
    const conflict = new DataError("version_conflict", "record r is at version 2", "read it again");
    expect([conflict.code, conflict.reason, conflict.hint]).toEqual([
      "VERSION_CONFLICT",
      "version_conflict",
      "read it again",
    ]);
    const tool = new ToolError(conflict.reason, conflict.message, conflict.hint);
    expect([tool.code, tool.reason]).toEqual(["VERSION_CONFLICT", "version_conflict"]);
  });
});
