/**
 * pg_dump | restic backup --stdin, for restic < 0.17, with us deciding when restic sees end of
 * input. pg_dump writes straight into restic's stdin through one OS pipe (a FIFO unlinked at once;
 * no byte passes through this process), and we hold a second write end open: when pg_dump exits 0
 * we close it and restic saves; when pg_dump fails, restic gets SIGINT first and its input is
 * closed only after it has exited, so it never saves a truncated dump.
 */

import { closeSync, constants, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
): Promise<PipeResult> {
  const pipe = openPipe();
  let heldWriteEnd = true;
  const closeInput = () => {
    if (heldWriteEnd) closeSync(pipe.write);
    heldWriteEnd = false;
  };
  let dump: Subprocess<"ignore", number, "pipe">;
  let restic: Subprocess<number, "pipe", "pipe">;
  try {
    dump = Bun.spawn(dumpArgv, { env: dumpEnv, stdin: "ignore", stdout: pipe.write, stderr: "pipe" });
    try {
      restic = Bun.spawn(resticArgv, { env: resticEnv, stdin: pipe.read, stdout: "pipe", stderr: "pipe" });
    } catch (error) {
      dump.kill("SIGTERM");
      throw error;
    }
  } catch (error) {
    closeInput();
    throw error;
  } finally {
    closeSync(pipe.read); // restic has its own copy; once it exits, pg_dump's writes fail
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
  try {
    const dumpCode = await dump.exited;
    if (dumpCode !== 0 && restic.exitCode === null) {
      restic.kill("SIGINT");
      await Promise.race([restic.exited, Bun.sleep(INTERRUPT_GRACE_MS)]);
      if (restic.exitCode === null) restic.kill("SIGKILL");
    }
    closeInput();
    const resticCode = await exitCode(restic);
    return {
      dump: { code: dumpCode, stderr: await dumpStderr },
      restic: { code: resticCode, stdout: await resticStdout, stderr: await resticStderr },
      resticEndedFirst,
    };
  } finally {
    closeInput();
  }
}

/**
 * An OS pipe as two descriptors: a FIFO in a private directory, opened for reading (non-blocking,
 * so the open does not wait for a writer; restic reads it through Go's poller) and for writing,
 * then unlinked, so nothing else can ever open it.
 */
function openPipe(): { read: number; write: number } {
  const dir = mkdtempSync(join(tmpdir(), "axe-dump-pipe-"));
  try {
    const path = join(dir, "pipe");
    const made = Bun.spawnSync(["mkfifo", "-m", "600", path], { stdout: "ignore", stderr: "pipe" });
    if (made.exitCode !== 0) throw new Error(`mkfifo failed: ${made.stderr.toString().trim()}`);
    const read = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      return { read, write: openSync(path, constants.O_WRONLY) };
    } catch (error) {
      closeSync(read);
      throw error;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function exitCode(child: Subprocess): Promise<number> {
  const code = await child.exited;
  return child.signalCode === "SIGINT" ? 130 : child.signalCode ? 128 : code;
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
