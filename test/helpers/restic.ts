/**
 * Backup fixtures: a config directory whose database is a test database, with the local restic
 * repository under its data dir, the ring off unless asked for, and the cold volume in a temp
 * dir that a test can make appear (write the marker) or disappear (remove it).
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseTarget } from "../../src/db/connect.ts";
import { makeConfigDir } from "./config.ts";
import { tempDir } from "./tmp.ts";

export interface BackupFixture {
  configDir: string;
  dataDir: string;
  stateDir: string;
  secretsDir: string;
  localRepo: string;
  coldVolume: string;
  coldRepo: string;
  /** Mounts (writes the marker) or unmounts (removes it) the cold volume. */
  setCold(present: boolean): void;
  /** A password file of restic's for a tier, for tests that look inside the repositories. */
  passwordFile(tier: "local" | "ring" | "cold"): string;
}

export interface BackupFixtureOptions {
  database: DatabaseTarget;
  ring?: { repository: string; ssh_command: string };
  backup?: Record<string, unknown>;
}

export function backupFixture(options: BackupFixtureOptions): BackupFixture {
  const coldVolume = tempDir("axe-cold");
  const backup: Record<string, unknown> = {
    check_subset: "100%",
    ring: options.ring ? { ...options.ring } : { enabled: false },
    cold: { volume: coldVolume },
    ...options.backup,
  };
  const configDir = makeConfigDir({ database: options.database, appliance: { backup } });
  const dataDir = join(configDir, "data");
  mkdirSync(join(dataDir, "state"), { recursive: true });
  const marker = join(coldVolume, ".axe-cold");
  return {
    configDir,
    dataDir,
    stateDir: join(dataDir, "state"),
    secretsDir: join(configDir, "secrets"),
    localRepo: join(dataDir, "backup", "restic"),
    coldVolume,
    coldRepo: join(coldVolume, "restic"),
    setCold(present) {
      if (present && !existsSync(marker)) writeFileSync(marker, "axe cold backup volume\n");
      if (!present) rmSync(marker, { force: true });
    },
    passwordFile: (tier) => join(configDir, "secrets", `restic-${tier}.password`),
  };
}

/** Runs restic directly against a repository (for assertions), password by file. */
export function resticJson(repo: string, passwordFile: string, args: string[], extraOptions: string[] = []): unknown {
  const run = Bun.spawnSync(["restic", "--no-cache", ...extraOptions, ...args, "--json"], {
    env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD_FILE: passwordFile },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (run.exitCode !== 0) throw new Error(`restic ${args.join(" ")} failed: ${run.stderr.toString()}`);
  return JSON.parse(run.stdout.toString());
}

export function snapshotCount(repo: string, passwordFile: string, extraOptions: string[] = []): number {
  return (resticJson(repo, passwordFile, ["snapshots"], extraOptions) as unknown[] | null)?.length ?? 0;
}

/** Lock ids in a repository (`restic list locks` prints one per line). */
export function lockIds(repo: string, passwordFile: string): string[] {
  const run = Bun.spawnSync(["restic", "--no-cache", "list", "locks", "--no-lock"], {
    env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD_FILE: passwordFile },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (run.exitCode !== 0) throw new Error(`restic list locks failed: ${run.stderr.toString()}`);
  return run.stdout.toString().split("\n").filter(Boolean);
}

/** Paths in the latest snapshot with `tag` (`restic ls latest --json`: one JSON object per line). */
export function listLatest(repo: string, passwordFile: string, tag: string): string[] {
  const run = Bun.spawnSync(["restic", "--no-cache", "ls", "latest", "--tag", tag, "--json"], {
    env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD_FILE: passwordFile },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (run.exitCode !== 0) throw new Error(`restic ls failed: ${run.stderr.toString()}`);
  return run.stdout
    .toString()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { struct_type?: string; path?: string })
    .filter((e) => e.struct_type === "node" && e.path)
    .map((e) => e.path!);
}
