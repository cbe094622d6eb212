/**
 * What this binary is, and how the machine knows it. `build/compile.ts` replaces the AXE_BUILD_* identifiers with string
 * literals through `bun build --define`; run from source they are undefined and we say so.
 */
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };

/** The reverse-DNS prefix of every launchd label and systemd unit this appliance installs (services, backup jobs). */
export const LABEL_PREFIX = "ai.axelabs.axe";

declare const AXE_BUILD_COMMIT: string | undefined;
declare const AXE_BUILD_TARGET: string | undefined;
declare const AXE_BUILD_TIME: string | undefined;

export interface BuildInfo {
  version: string;
  commit: string;
  target: string;
  builtAt: string;
}

export function buildInfo(): BuildInfo {
  return {
    version: pkg.version,
    commit: typeof AXE_BUILD_COMMIT === "string" ? AXE_BUILD_COMMIT : "source",
    target:
      typeof AXE_BUILD_TARGET === "string" ? AXE_BUILD_TARGET : `bun-${process.platform}-${process.arch} (source)`,
    builtAt: typeof AXE_BUILD_TIME === "string" ? AXE_BUILD_TIME : "",
  };
}

/** Release version this process serves: AXE_RELEASE (set by deploy for a color) or the package version. */
export function releaseVersion(): string {
  return process.env.AXE_RELEASE || pkg.version;
}

/** The command that runs this binary again: the compiled executable, or bun + src/main.ts from source. */
export function selfCommand(): string[] {
  if (buildInfo().commit !== "source") return [process.execPath];
  return [process.execPath, join(import.meta.dir, "..", "main.ts")];
}

/** What a binary says of itself: its build, and whether its colors prove themselves (src/lib/color-proof.ts). */
export interface BinaryAnswer {
  version: string;
  commit: string;
  /** As in a release manifest: `linux-x64`, without `bun-` or ` (source)`. */
  target: string;
  builtAt: string;
  provesColor: boolean;
}

/** `--version --json`: the build info, and what this binary does that one from before may not. */
export function versionJson(): string {
  return `${JSON.stringify({ ...buildInfo(), proves_color: true })}\n`;
}

const VERSION_LINE =
  /^axe-appliance (\S+) \(commit (\S+), bun-([a-z0-9]+-[a-z0-9]+)(?: \(source\))?(?:, built (\S+))?\)$/;

/**
 * Reads a binary's answer to `--version --json`. A binary from before that option ignores `--json`
 * and prints its one line (versionLine in src/main.ts): its colors prove nothing. Undefined when the
 * answer is neither.
 */
export function parseVersionAnswer(stdout: string): BinaryAnswer | undefined {
  const text = stdout.trim();
  const line = VERSION_LINE.exec(text);
  if (line)
    return { version: line[1]!, commit: line[2]!, target: line[3]!, builtAt: line[4] ?? "", provesColor: false };
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const { version, commit, target, builtAt } = json;
  if (typeof version !== "string" || typeof commit !== "string" || typeof target !== "string") return undefined;
  return {
    version,
    commit,
    target: target.replace(/^bun-/, "").replace(/ \(source\)$/, ""),
    builtAt: typeof builtAt === "string" ? builtAt : "",
    provesColor: json.proves_color === true,
  };
}
