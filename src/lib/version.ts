/**
 * What this binary is. `build/compile.ts` replaces the AXE_BUILD_* identifiers with string
 * literals through `bun build --define`; run from source they are undefined and we say so.
 */
import pkg from "../../package.json" with { type: "json" };

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
