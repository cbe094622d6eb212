/**
 * Installed releases under {data_dir}/releases/<version>/ (axe-appliance, release.jws,
 * manifest.json). A release appears atomically: it is assembled in a hidden staging directory
 * and renamed into place. Only the newest `keep` releases stay, and never one a color points at.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../lib/atomic-write.ts";
import { RELEASE_ANSWER_FILE } from "../lib/color-proof.ts";
import { DeployError } from "../lib/errors.ts";
import { isAlive } from "../lib/lock-file.ts";
import { type BinaryAnswer, parseVersionAnswer } from "../lib/version.ts";
import { type Manifest, parseManifest } from "./manifest.ts";
import { BINARY_NAME, JWS_NAME, MANIFEST_NAME, sha256File } from "./release-dir.ts";

/** A release whose binary waits in a staging file, checked against its signed manifest (release-stream.ts). */
export interface StagedRelease {
  manifest: Manifest;
  jws: string;
  /** The staged binary, verified against manifest.sha256. */
  file: string;
}

export interface InstalledRelease {
  version: string;
  dir: string;
  binary: string;
  manifest: Manifest;
  installedAt: Date;
}

export function releasesDir(dataDir: string): string {
  return join(dataDir, "releases");
}

/** A staging file for the incoming binary, inside the releases directory (same filesystem as the rename). */
export function stagingPath(dataDir: string): string {
  const dir = releasesDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return join(dir, `.incoming-${process.pid}-${Date.now()}`);
}

/**
 * Runs the release's binary with `--version --json`, checks that it is the build the manifest
 * names, and keeps its answer beside it (whether its colors prove themselves: src/lib/color-proof.ts).
 */
export async function recordBinaryAnswer(
  release: InstalledRelease,
  run: (binary: string, args: string[]) => Promise<string>,
): Promise<BinaryAnswer> {
  const stdout = await run(release.binary, ["--version", "--json"]);
  const answer = parseVersionAnswer(stdout);
  const { commit, target } = release.manifest;
  if (!answer || answer.commit !== commit || answer.target !== target)
    throw new DeployError(
      "RELEASE_BINARY",
      `the binary says "${stdout.trim().slice(0, 200)}", expected commit ${commit} for ${target}`,
    );
  writeBinaryAnswer(release, answer);
  return answer;
}

/** Keeps what the release's binary said of itself beside it (RELEASE_ANSWER_FILE). */
export function writeBinaryAnswer(release: InstalledRelease, answer: BinaryAnswer): void {
  const { provesColor, ...build } = answer;
  writeFileAtomic(
    join(release.dir, RELEASE_ANSWER_FILE),
    `${JSON.stringify({ ...build, proves_color: provesColor }, null, 2)}\n`,
    { mode: 0o644 },
  );
}

/** Installs a verified release; a re-push of the same version and sha256 reuses the installed copy. */
export function installRelease(dataDir: string, verified: StagedRelease): InstalledRelease {
  const { manifest } = verified;
  const target = join(releasesDir(dataDir), manifest.version);
  if (existsSync(target)) {
    const existing = readInstalled(target);
    rmSync(verified.file, { force: true });
    if (existing?.manifest.sha256 === manifest.sha256) {
      // its manifest.json is only a copy: the bytes about to run as root must be the ones signed
      if (sha256File(existing.binary) === manifest.sha256) return existing;
      throw new DeployError(
        "RELEASE_TAMPERED",
        `install: ${existing.binary} is not the binary release ${manifest.version} signed (its sha256 differs); nothing was run`,
        `remove ${target} (it is not a color's) and push the release again`,
      );
    }
    throw new DeployError(
      "RELEASE_EXISTS",
      `install: release ${manifest.version} is already installed with a different binary`,
      "give the new release its own version",
    );
  }
  return placeRelease(dataDir, manifest, (binary) => renameSync(verified.file, binary), verified.jws);
}

/**
 * Assembles releases/<version>/ (binary, manifest, signature when there is one) in a staging
 * directory and renames it into place, so a release directory is whole or absent.
 */
export function placeRelease(
  dataDir: string,
  manifest: Manifest,
  putBinary: (path: string) => void,
  jws?: string,
): InstalledRelease {
  const target = join(releasesDir(dataDir), manifest.version);
  const staging = `${target}.staging-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true, mode: 0o755 });
  putBinary(join(staging, BINARY_NAME));
  chmodSync(join(staging, BINARY_NAME), 0o755); // executable only now, after verification
  if (jws !== undefined) writeFileSync(join(staging, JWS_NAME), `${jws}\n`);
  writeFileSync(join(staging, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(staging, target);
  return readInstalled(target)!;
}

function readInstalled(dir: string): InstalledRelease | undefined {
  try {
    const manifest = parseManifest(JSON.parse(readFileSync(join(dir, MANIFEST_NAME), "utf8")));
    return {
      version: manifest.version,
      dir,
      binary: join(dir, BINARY_NAME),
      manifest,
      installedAt: statSync(join(dir, MANIFEST_NAME)).mtime,
    };
  } catch {
    return undefined;
  }
}

export function findRelease(dataDir: string, version: string): InstalledRelease | undefined {
  return readInstalled(join(releasesDir(dataDir), version));
}

/** Installed releases, newest first. */
export function listReleases(dataDir: string): InstalledRelease[] {
  const dir = releasesDir(dataDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => !name.startsWith(".") && !name.includes(".staging-"))
    .map((name) => readInstalled(join(dir, name)))
    .filter((r): r is InstalledRelease => r !== undefined)
    .sort((a, b) => b.installedAt.getTime() - a.installedAt.getTime());
}

/** Removes all but the newest `keep` releases (never one in `inUse`), and leftovers of crashed installs. */
export function pruneReleases(dataDir: string, keep: number, inUse: string[]): string[] {
  const dir = releasesDir(dataDir);
  if (!existsSync(dir)) return [];
  for (const name of readdirSync(dir)) {
    const leftover = /^\.incoming-(\d+)-|\.staging-(\d+)$/.exec(name);
    const pid = Number(leftover?.[1] ?? leftover?.[2]);
    if (leftover && pid !== process.pid && !isAlive(pid)) rmSync(join(dir, name), { recursive: true, force: true });
  }
  const removed: string[] = [];
  listReleases(dataDir).forEach((release, i) => {
    if (i < keep || inUse.includes(release.version)) return;
    rmSync(release.dir, { recursive: true, force: true });
    removed.push(release.version);
  });
  return removed;
}
