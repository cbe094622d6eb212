/**
 * pg_dump | us | restic backup --stdin, for restic < 0.17. We copy the bytes ourselves so that
 * we, not pg_dump's exit, decide when restic sees end of input: when pg_dump fails, restic gets
 * SIGINT first and its input is closed only after it has exited, so it never saves a truncated
 * dump. Bun's own pipes copy about twice as fast as node streams here.
 */
import type { Subprocess } from "bun";
import type { RunResult } from "./restic.ts";

export interface PipeResult {
  dump: { code: number; stderr: string };
  restic: RunResult;
  /** restic ended before pg_dump did (its own failure), so pg_dump was stopped. */
  resticEndedFirst: boolean;
}

const INTERRUPT_GRACE_MS = 30_000;

export async function pipeIntoRestic(
  dumpArgv: string[],
  dumpEnv: Record<string, string>,
  resticArgv: string[],
  resticEnv: Record<string, string>,
  onLine?: (line: string) => void,
  onCopied?: (bytes: number) => void,
): Promise<PipeResult> {
  const dump = Bun.spawn(dumpArgv, { env: dumpEnv, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let restic: Subprocess<"pipe", "pipe", "pipe">;
  try {
    restic = Bun.spawn(resticArgv, { env: resticEnv, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  } catch (error) {
    dump.kill("SIGTERM");
    throw error;
  }
  const resticStdout = readLines(restic.stdout, onLine);
  const resticStderr = new Response(restic.stderr).text();
  const dumpStderr = new Response(dump.stderr).text();
  let resticEndedFirst = false;
  void restic.exited.then(() => {
    if (dump.exitCode === null) {
      resticEndedFirst = true;
      dump.kill("SIGTERM"); // rather than leave it blocked on a pipe nobody reads
    }
  });
  let copied = 0;
  try {
    for await (const chunk of dump.stdout) {
      if (restic.exitCode !== null) break;
      restic.stdin.write(chunk);
      await restic.stdin.flush();
      copied += chunk.byteLength;
      onCopied?.(copied);
    }
  } catch {
    // restic went away mid-write; its exit code and stderr say why
  }
  const dumpCode = await dump.exited;
  if (dumpCode === 0 && !resticEndedFirst) {
    await restic.stdin.end();
  } else if (restic.exitCode === null) {
    restic.kill("SIGINT");
    await Promise.race([restic.exited, Bun.sleep(INTERRUPT_GRACE_MS)]);
    if (restic.exitCode === null) restic.kill("SIGKILL");
  }
  const resticCode = await exitCode(restic);
  if (!(dumpCode === 0 && !resticEndedFirst)) safeEnd(restic);
  return {
    dump: { code: dumpCode, stderr: await dumpStderr },
    restic: { code: resticCode, stdout: await resticStdout, stderr: await resticStderr },
    resticEndedFirst,
  };
}

async function exitCode(child: Subprocess): Promise<number> {
  const code = await child.exited;
  return child.signalCode === "SIGINT" ? 130 : child.signalCode ? 128 : code;
}

function safeEnd(child: Subprocess<"pipe", "pipe", "pipe">): void {
  try {
    void child.stdin.end();
  } catch {
    // already closed with the process
  }
}

async function readLines(stream: ReadableStream<Uint8Array>, onLine?: (line: string) => void): Promise<string> {
  const decoder = new TextDecoder();
  let all = "";
  let pending = "";
  for await (const chunk of stream) {
    const text = decoder.decode(chunk, { stream: true });
    all += text;
    if (!onLine) continue;
    pending += text;
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) if (line.trim()) onLine(line);
  }
  return all;
}
