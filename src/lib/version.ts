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
