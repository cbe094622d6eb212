/** Runs an installed release's binary for one short command (`--version`, `db migrate`), bounded in time. */
import { DeployError } from "../lib/errors.ts";
import { describeExit, lastLines, runProgram } from "../lib/program.ts";

export async function runBinary(
  binary: string,
  args: string[],
  options: { timeoutMs: number; env?: Record<string, string> },
): Promise<string> {
  const exit = await runProgram([binary, ...args], {
    env: { ...process.env, ...options.env },
    deadlineMs: options.timeoutMs,
    deadlineSignal: "SIGKILL",
  }).catch((error: Error) => {
    throw new DeployError("RELEASE_COMMAND", `\`${args.join(" ")}\`: ${error.message}`);
  });
  if (exit.code !== 0) {
    const tail = lastLines(exit.stderr || exit.stdout, 3, " | ");
    throw new DeployError(
      "RELEASE_COMMAND",
      `\`${args.join(" ")}\` ${describeExit(exit, options.timeoutMs)}${tail ? `: ${tail}` : ""}`,
    );
  }
  return exit.stdout.trim();
}
