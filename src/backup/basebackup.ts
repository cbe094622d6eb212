/**
 * The physical base backup that point-in-time restore starts from (issue 17): `pg_basebackup -D -
 * -Ft -X none` (one tar of the cluster on standard output; the WAL it needs comes from the archive)
 * streamed into restic like the dump, through the same path, so a failed pg_basebackup is never a
 * snapshot. Taken beside the logical dump when `backup.wal.enabled`; the dump stays the portable copy.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseTarget } from "../db/connect.ts";
import { BackupError } from "../lib/errors.ts";
import { type BackupSummary, libpqAuth, type StreamKind, streamIntoRestic, summaryOf, toolDir } from "./dump.ts";
import type { Repo, Restic } from "./restic.ts";
import { BASE_TAG, RUN_TAG_PREFIX } from "./tags.ts";

export const BASE_FILENAME = "base.tar";
const BASE_STREAM: StreamKind = {
  tag: BASE_TAG,
  filename: BASE_FILENAME,
  program: "pg_basebackup",
  what: "base backup snapshot",
};

export async function baseBackup(options: {
  restic: Restic;
  repo: Repo;
  target: DatabaseTarget;
  host: string;
  runId: string;
  onLine?: (line: string) => void;
}): Promise<BackupSummary> {
  const program = join(toolDir(), "pg_basebackup");
  if (!existsSync(program))
    throw new BackupError(
      "PG_BASEBACKUP_MISSING",
      `pg_basebackup not found beside pg_dump (${program})`,
      "install the Postgres client tools of the server's version",
    );
  const auth = await libpqAuth(options.target);
  try {
    // -c fast: a checkpoint now rather than spread over minutes; --no-password: libpq's passfile only.
    // The label names the run, so the `.backup` file Postgres archives at its end says which snapshot it ends.
    const label = `axe ${RUN_TAG_PREFIX}${options.runId}`;
    const argv = [program, "-D", "-", "-Ft", "-X", "none", "-c", "fast", "-l", label, "--no-password"];
    return summaryOf(await streamIntoRestic(options, argv, auth.env, BASE_STREAM));
  } finally {
    await auth.cleanup();
  }
}
