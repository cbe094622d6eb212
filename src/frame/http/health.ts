/**
 * GET /healthz: what the proxy's health checks and the deploy gate read. 503 when the database is
 * unreachable. A request that carries a challenge gets this color's proof (src/lib/color-proof.ts).
 * GET /proof: the proof alone, without asking the database, for the proxy's every new connection.
 */
import { z } from "zod";
import type { Sql } from "../../db/connect.ts";
import { CHALLENGE_HEADER, colorProof, PROOF_HEADER } from "../../lib/color-proof.ts";
import { COLORS, type Color } from "../../lib/colors.ts";
import { releaseVersion } from "../../lib/version.ts";

/** The answer's wire format, shared with its readers (the deploy gate, status); unknown keys are let through for newer releases. */
export const HealthSchema = z.object({
  status: z.enum(["ok", "degraded"]),
  service: z.literal("axe-frame"),
  color: z.enum(COLORS),
  release: z.string(),
  database: z.object({ reachable: z.boolean(), migration: z.number() }),
});
export type Health = z.infer<typeof HealthSchema>;

const TIMEOUT_MS = 2_000;

export async function checkHealth(sql: Sql, color: Color, instance?: string): Promise<Health> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error("timeout")), TIMEOUT_MS)),
  );
  let database = { reachable: false, migration: 0 };
  try {
    const [row] = await Promise.race([
      sql<{ version: number }[]>`select coalesce(max(version), 0)::int as version from meta.schema_migrations`,
      timeout,
    ]);
    database = { reachable: true, migration: row?.version ?? 0 };
  } catch {
    // unreachable, slow, or not migrated: reported as not reachable, the details are in Postgres' log
  } finally {
    clearTimeout(timer);
  }
  return {
    status: database.reachable ? "ok" : "degraded",
    service: "axe-frame",
    color,
    release: releaseVersion(),
    ...(instance ? { instance } : {}),
    database,
  };
}

export async function healthResponse(
  request: Request,
  sql: Sql,
  color: Color,
  colorKey: Buffer,
  instance?: string,
): Promise<Response> {
  const health = await checkHealth(sql, color, instance);
  const proof = colorProof(colorKey, color, request.headers.get(CHALLENGE_HEADER));
  return Response.json(health, {
    status: health.status === "ok" ? 200 : 503,
    headers: { "cache-control": "no-store", ...(proof ? { [PROOF_HEADER]: proof } : {}) },
  });
}

/** 204 with this color's proof of the request's challenge; 400 without a valid challenge. */
export function proofResponse(request: Request, color: Color, colorKey: Buffer): Response {
  const proof = colorProof(colorKey, color, request.headers.get(CHALLENGE_HEADER));
  if (!proof) return new Response(`expected ${CHALLENGE_HEADER}: 32-128 lower-case hex digits\n`, { status: 400 });
  return new Response(null, { status: 204, headers: { [PROOF_HEADER]: proof, "cache-control": "no-store" } });
}
