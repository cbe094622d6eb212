/** Runs an installed release's binary for one short command (`--version`, `db migrate`), bounded in time. */
import { DeployError } from "../lib/errors.ts";

export async function runBinary(
  binary: string,
  args: string[],
  options: { timeoutMs: number; env?: Record<string, string> },
): Promise<string> {
  const child = Bun.spawn([binary, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...options.env },
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
  try {
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    if (code !== 0) {
      const why = child.signalCode === "SIGKILL" ? `did not finish within ${options.timeoutMs} ms` : `exited ${code}`;
      const tail = (stderr || stdout).trim().split("\n").slice(-3).join(" | ");
      throw new DeployError("RELEASE_COMMAND", `\`${args.join(" ")}\` ${why}${tail ? `: ${tail}` : ""}`);
    }
    return stdout.trim();
  } finally {
    clearTimeout(timer);
  }
}
