import type { Command, Option } from "../lib/cli.ts";
import { NotBuiltError } from "../lib/errors.ts";

/** A command whose mode a later release builds: it says so and exits 69, never pretends. */
export function notBuilt(name: string, summary: string, usage: string, issue: string, options: Record<string, Option> = {}): Command {
  return {
    name,
    summary,
    usage,
    options,
    positionals: "any",
    run: ({ path }) => {
      throw new NotBuiltError("NOT_BUILT", `'${path}' is not built yet in this release (${issue})`);
    },
  };
}
