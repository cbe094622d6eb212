/**
 * Backup fixtures: a config directory whose database is a test database, with the local restic
 * repository under its data dir, the ring off unless asked for, and the cold volume in a temp
 * dir that a test can make appear (write the marker) or disappear (remove it).
 */
import { afterAll, beforeAll } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseTarget } from "../../src/db/connect.ts";
import { makeConfigDir } from "./config.ts";
import { CONNECT_TIMEOUT_S } from "./sshd.ts";
import { tempDir } from "./tmp.ts";

/** One restic the backup tests run against. */
export interface ResticUnderTest {
  bin: string;
  /** "0.14.0" */
  version: string;
  /** restic >= 0.17 takes the --stdin-from-command path, as Homebrew's restic on a Mac mini does. */
  stdinFromCommand: boolean;
  /** restic >= 0.17's forget also keeps the oldest snapshot while fewer periods exist than the policy asks for. */
  keepsOldest: boolean;
}

function describeRestic(bin: string): ResticUnderTest | undefined {
  const run = Bun.spawnSync([bin, "version"], { stdout: "pipe", stderr: "pipe" });
  const m = /restic (\d+)\.(\d+)\.(\d+)/.exec(run.stdout.toString());
  if (run.exitCode !== 0 || !m) return undefined;
  const from017 = Number(m[1]) > 0 || Number(m[2]) >= 17;
  return { bin, version: `${m[1]}.${m[2]}.${m[3]}`, stdinFromCommand: from017, keepsOldest: from017 };
}

let matrix: ResticUnderTest[] | undefined;

/**
 * The restics the backup failure cases run against: the one on PATH (Debian bookworm's 0.14) and,
 * when set, $AXE_RESTIC_NEXT (Debian trixie's 0.18, which .ci/restic-next provides). Each matrix
 * test names its version in its describe block, so the summary says how many ran on each.
 */
export function resticMatrix(): ResticUnderTest[] {
  matrix ??= [
    describeRestic("restic"),
    process.env.AXE_RESTIC_NEXT ? describeRestic(process.env.AXE_RESTIC_NEXT) : undefined,
  ]
    .filter((r): r is ResticUnderTest => r !== undefined)
    .filter((r, i, all) => all.findIndex((o) => o.version === r.version) === i);
  return matrix;
}

/** The restic the helpers below use for their assertions and fixtures: PATH's, unless a matrix block says. */
let resticBin = "restic";

/** In a matrix describe block: its tests (fixtures and assertions) use `restic`; the files after it PATH's again. */
export function useRestic(restic: ResticUnderTest): void {
  beforeAll(() => {
    resticBin = restic.bin;
  });
  afterAll(() => {
    resticBin = "restic";
  });
}

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
  /** The database to back up; none: the appliance's embedded cluster under the fixture's data_dir. */
  database?: DatabaseTarget;
  /** The restic the appliance runs (backup.restic); default: the one the helpers use now. */
  restic?: string;
  ring?: { repository?: string; ssh_command: string } & Record<string, unknown>;
  backup?: Record<string, unknown>;
}

export function backupFixture(options: BackupFixtureOptions): BackupFixture {
  const coldVolume = tempDir("axe-cold");
  const backup: Record<string, unknown> = {
    check_subset: "100%",
    restic: options.restic ?? resticBin,
    // the ring's ssh carries ConnectTimeout (default 10 s, too short for a loaded machine's sshd); tests of a hung peer set theirs
    ring: options.ring ? { connect_timeout: CONNECT_TIMEOUT_S, ...options.ring } : { enabled: false },
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
  const run = Bun.spawnSync([resticBin, "--no-cache", ...extraOptions, ...args, "--json"], {
    env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD_FILE: passwordFile },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (run.exitCode !== 0) throw new Error(`restic ${args.join(" ")} failed: ${run.stderr.toString()}`);
  return JSON.parse(run.stdout.toString());
}

/**
 * The tests' retention keeps one snapshot pair a day, and their counts assume every snapshot falls
 * on one day: a test that ran across midnight (local time, as restic buckets) kept a pair more and
 * failed. Called first in such a test, this waits for the day to turn when fewer than `marginMs`
 * of it are left (at most that long), so the test's snapshots share a day.
 */
export async function clearOfMidnight(marginMs = 180_000): Promise<void> {
  const now = new Date();
  const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1).getTime();
  if (midnight - now.getTime() < marginMs) await Bun.sleep(midnight - now.getTime() + 1_000);
}

export function snapshotCount(repo: string, passwordFile: string, extraOptions: string[] = []): number {
  return (resticJson(repo, passwordFile, ["snapshots"], extraOptions) as unknown[] | null)?.length ?? 0;
}

/** Lock ids in a repository (`restic list locks` prints one per line). */
export function lockIds(repo: string, passwordFile: string): string[] {
  const run = Bun.spawnSync([resticBin, "--no-cache", "list", "locks", "--no-lock"], {
    env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD_FILE: passwordFile },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (run.exitCode !== 0) throw new Error(`restic list locks failed: ${run.stderr.toString()}`);
  return run.stdout.toString().split("\n").filter(Boolean);
}

/** Paths in the latest snapshot with `tag` (`restic ls latest --json`: one JSON object per line). */
export function listLatest(repo: string, passwordFile: string, tag: string): string[] {
  const run = Bun.spawnSync([resticBin, "--no-cache", "ls", "latest", "--tag", tag, "--json"], {
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

function resticText(repo: string, passwordFile: string, args: string[]): string {
  const run = Bun.spawnSync([resticBin, "--no-cache", ...args], {
    env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD_FILE: passwordFile },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (run.exitCode !== 0) throw new Error(`restic ${args.join(" ")} failed: ${run.stderr.toString()}`);
  return run.stdout.toString();
}

/** Pack files under a local repository's data/, biggest first. */
export function packFiles(repo: string): string[] {
  return readdirSync(join(repo, "data"), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort((a, b) => statSync(b).size - statSync(a).size);
}

/** Flips `count` bytes of a file at `offset` (default: its middle), as a failing disk would. */
export function flipBytes(path: string, offset?: number, count = 64): void {
  const bytes = readFileSync(path);
  const at = offset ?? Math.floor(bytes.length / 2);
  for (let i = 0; i < count && at + i < bytes.length; i++) bytes[at + i]! ^= 0xff;
  chmodSync(path, 0o600);
  writeFileSync(path, bytes);
}

/**
 * Where the content of `fileName` (a base name) in the latest snapshot tagged `tag` is stored: the
 * pack file and the byte range of its first data blob, read from the snapshot's trees and the index.
 */
export function blobLocation(
  repo: string,
  passwordFile: string,
  tag: string,
  fileName: string,
): { pack: string; offset: number; length: number } {
  type Node = { name: string; type: string; content?: string[]; subtree?: string };
  const snapshots = resticJson(repo, passwordFile, ["snapshots", "--tag", tag, "--latest", "1"]) as Array<{
    tree: string;
  }>;
  const find = (tree: string): string | undefined => {
    const { nodes } = JSON.parse(resticText(repo, passwordFile, ["cat", "blob", tree])) as { nodes: Node[] };
    for (const node of nodes) {
      if (node.type === "file" && node.name === fileName && node.content?.length) return node.content[0];
      const below = node.type === "dir" && node.subtree ? find(node.subtree) : undefined;
      if (below) return below;
    }
    return undefined;
  };
  const blob = find(snapshots.at(-1)!.tree);
  if (!blob) throw new Error(`${fileName} not found in the latest ${tag} snapshot`);
  for (const index of resticText(repo, passwordFile, ["list", "index"]).split("\n").filter(Boolean)) {
    const { packs } = JSON.parse(resticText(repo, passwordFile, ["cat", "index", index])) as {
      packs: Array<{ id: string; blobs: Array<{ id: string; offset: number; length: number }> }>;
    };
    for (const pack of packs) {
      const hit = pack.blobs.find((b) => b.id === blob);
      if (hit)
        return { pack: join(repo, "data", pack.id.slice(0, 2), pack.id), offset: hit.offset, length: hit.length };
    }
  }
  throw new Error(`blob ${blob} of ${fileName} is in no index`);
}

/** A ring tier that reaches the ssh host `peer` of `sshConfig` (test/helpers/sshd.ts) over sftp, into `dir` there. */
export function ringOverSsh(sshConfig: string, dir = join(tempDir("axe-peer"), "ring", "axe")) {
  return { dir, ring: { repository: `sftp:peer:${dir}`, ssh_command: `ssh -F ${sshConfig} peer -s sftp` } };
}
