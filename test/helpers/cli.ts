/** Runs the real CLI (bun src/main.ts) as a child process. */
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dir, "../..");
export const MAIN = join(REPO, "src/main.ts");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; stdin?: Uint8Array | string } = {},
): Promise<CliResult> {
  const child = Bun.spawn([process.execPath, MAIN, ...args], {
    cwd: options.cwd ?? REPO,
    env: { ...process.env, AXE_CONFIG_DIR: "", ...options.env },
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}
