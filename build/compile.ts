/**
 * npm run build [-- --all] [--out DIR]
 * Compiles src/main.ts into one executable with `bun build --compile`: dist/axe-appliance for
 * this host, or with --all one per supported target plus SHA256SUMS. Version, git commit, target
 * and build time are baked in with --define, so `--version` needs no files beside the binary.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";

export const TARGETS = ["darwin-arm64", "darwin-x64", "linux-x64", "linux-arm64"] as const;
export type Target = (typeof TARGETS)[number];

const root = resolve(import.meta.dir, "..");

export function hostTarget(): Target {
  const target = `${process.platform}-${process.arch}` as Target;
  if (!TARGETS.includes(target)) throw new Error(`unsupported host ${target}; supported: ${TARGETS.join(", ")}`);
  return target;
}

export function gitCommit(): string {
  const head = spawnSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: root, encoding: "utf8" });
  if (head.status !== 0) return "unknown";
  const dirty = spawnSync("git", ["status", "--porcelain", "--untracked-files=no"], {
    cwd: root,
    encoding: "utf8",
  }).stdout.trim();
  return head.stdout.trim() + (dirty ? "-dirty" : "");
}

/** Compiles one target to `outfile`; returns its sha256. */
export function compile(target: Target, outfile: string, commit = gitCommit()): string {
  const defines = {
    AXE_BUILD_COMMIT: commit,
    AXE_BUILD_TARGET: `bun-${target}`,
    AXE_BUILD_TIME: new Date().toISOString(),
  };
  const args = [
    "build",
    join(root, "src/main.ts"),
    "--compile",
    // A compiled binary would read bunfig.toml (its `preload` runs first) and .env from the directory it is
    // started in: the receiver starts in the deploy account's home under sudo, as root (decision 69).
    "--no-compile-autoload-bunfig",
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-tsconfig",
    "--no-compile-autoload-package-json",
    "--minify",
    "--bytecode",
    "--sourcemap=none",
    `--target=bun-${target}`,
    `--outfile=${outfile}`,
    ...Object.entries(defines).map(([k, v]) => `--define=${k}=${JSON.stringify(v)}`),
  ];
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (result.status !== 0) throw new Error(`bun build for ${target} failed (exit ${result.status})`);
  return createHash("sha256").update(readFileSync(outfile)).digest("hex");
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { all: { type: "boolean" }, out: { type: "string" } }, strict: true });
  const out = resolve(values.out ?? join(root, "dist"));
  mkdirSync(out, { recursive: true });
  const builds = values.all
    ? TARGETS.map((t) => [t, join(out, `axe-appliance-${t}`)] as const)
    : [[hostTarget(), join(out, "axe-appliance")] as const];
  const sums = builds.map(([target, file]) => `${compile(target, file)}  ${basename(file)}`);
  writeFileSync(join(out, "SHA256SUMS"), `${sums.join("\n")}\n`);
  console.log(sums.join("\n"));
}
