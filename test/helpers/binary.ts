/**
 * The real axe-appliance binary for this host, compiled once per test run (once per worker under
 * `npm test`'s parallel workers) and shared by every file that needs one: deploy releases,
 * install.sh's dist directory. `bun build --compile` takes seconds of CPU and writes 100+ MB.
 * A file that needs the binary at a path of its own copies or links it; none may change its bytes.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { compile, gitCommit, hostTarget } from "../../build/compile.ts";
import { tempDir } from "./tmp.ts";

export interface CompiledBinary {
  path: string;
  sha256: string;
  /** The commit baked in (others commit while tests run: git is asked once). */
  commit: string;
}

let built: CompiledBinary | undefined;

export function compiledBinary(): CompiledBinary {
  if (built && existsSync(built.path)) return built; // a test may have removed it: compile again
  const path = join(tempDir("axe-bin", { scope: "run" }), "axe-appliance");
  const commit = gitCommit();
  built = { path, sha256: compile(hostTarget(), path, commit), commit };
  return built;
}
