/**
 * Config and secrets are part of "proven": without master.key the restored PII is unreadable. At
 * backup time each file of the files snapshot is hashed (sha256) just before restic reads it, and
 * a file that changed while restic read it is left out; the drill restores the latest files
 * snapshot into a private scratch directory and compares every recorded file's sha256.
 */
import { createHash, randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { BackupError } from "../lib/errors.ts";
import { lastLines } from "../lib/program.ts";
import type { BackupContext } from "./context.ts";
import { type FileFigure, fileFiguresFor } from "./figures.ts";
import type { Repo } from "./restic.ts";
import { findSnapshot } from "./restore.ts";
import { looksDamaged } from "./retention.ts";
import { markDamaged } from "./status.ts";
import { FILES_TAG, RUN_TAG_PREFIX } from "./tags.ts";

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** Every regular file under `paths` (files or directories) with its size, mtime and sha256. */
export function hashFiles(paths: string[]): Array<FileFigure & { mtimeMs: number }> {
  const out: Array<FileFigure & { mtimeMs: number }> = [];
  const visit = (path: string) => {
    let stat: ReturnType<typeof lstatSync>;
    try {
      stat = lstatSync(path);
    } catch {
      return; // gone since it was listed
    }
    if (stat.isDirectory()) for (const name of readdirSync(path).sort()) visit(join(path, name));
    else if (stat.isFile()) {
      try {
        out.push({ path, size: stat.size, mtimeMs: stat.mtimeMs, sha256: sha256(path) });
      } catch {
        // unreadable: restic reports it too (exit 3)
      }
    }
  };
  for (const path of paths) visit(path);
  return out;
}

/** The figures whose file did not change while restic read it (same size and mtime afterwards). */
export function stableFigures(hashed: Array<FileFigure & { mtimeMs: number }>): FileFigure[] {
  return hashed
    .filter((f) => {
      try {
        const now = statSync(f.path);
        return now.size === f.size && now.mtimeMs === f.mtimeMs;
      } catch {
        return false;
      }
    })
    .map(({ path, size, sha256 }) => ({ path, size, sha256 }));
}

/** Restores the latest files snapshot of `repo` into a scratch directory and proves every recorded file. */
export async function drillFiles(ctx: BackupContext, repo: Repo): Promise<{ snapshot: string; files: number }> {
  const snapshot = await findSnapshot(ctx, repo, "latest", FILES_TAG);
  const id = snapshot.id.slice(0, 8);
  const runId = (snapshot.tags ?? []).find((t) => t.startsWith(RUN_TAG_PREFIX))?.slice(RUN_TAG_PREFIX.length);
  const expected = runId ? fileFiguresFor(ctx.stateDir, runId) : undefined;
  if (!expected)
    throw new BackupError(
      "DRILL_NO_FIGURES",
      `${repo.tier}: no sha256 figures recorded for files snapshot ${id}, so config and secrets cannot be proven`,
      "run `axe-appliance backup run` for a files snapshot with figures, then verify again",
    );
  const scratch = join(ctx.config.paths.data, "backup", `drill-${randomBytes(5).toString("hex")}`);
  mkdirSync(scratch, { recursive: true, mode: 0o700 }); // it holds secrets while the drill runs
  try {
    const restored = await ctx.restic().run(repo, ["restore", snapshot.id, "--target", scratch]);
    const problems: string[] = [];
    for (const want of expected) {
      const at = join(scratch, want.path);
      let got: string | undefined;
      try {
        got = sha256(at);
      } catch {
        problems.push(`${want.path}: missing after restore`);
        continue;
      }
      if (got !== want.sha256) problems.push(`${want.path}: sha256 differs from the backup's`);
    }
    if (restored.code !== 0 && looksDamaged(restored.stderr))
      markDamaged(ctx.stateDir, repo.tier, `restoring files snapshot ${id} found damage`);
    if (problems.length || restored.code !== 0) {
      const restic = lastLines(restored.stderr, 2);
      throw new BackupError(
        "DRILL_FILES_MISMATCH",
        `files snapshot ${id}: ${problems.slice(0, 5).join("; ") || "restore failed"}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ""}${restored.code !== 0 ? `; restic: ${restic}` : ""}`,
        `keep this repository (retention is paused on it); restore config and secrets from another tier (\`backup restore --tier ring|cold --to-dir\`) and run \`axe-appliance backup repair --tier ${repo.tier}\``,
      );
    }
    return { snapshot: id, files: expected.length };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
