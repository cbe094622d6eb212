/**
 * pg_dump | restic backup --stdin, for restic < 0.17, with us deciding when restic sees end of
 * input. pg_dump writes straight into restic's stdin through one OS pipe (a FIFO unlinked at once;
 * no byte passes through this process), and we hold a second write end open: when pg_dump exits 0
 * we close it and restic saves; when pg_dump fails, restic gets SIGINT first and its input is
 * closed only after it has exited, so it never saves a truncated dump.
 */

import { closeSync } from "node:fs";
import { openPipe, type RunningProgram, startProgram } from "../lib/program.ts";
import type { RunResult } from "./restic.ts";

/** How pg_dump ended: its exit code, or the signal that killed it, and whether its deadline passed. */
export interface DumpExit {
  code: number;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  deadlineMs?: number;
  stderr: string;
}

export interface PipeResult {
  dump: DumpExit;
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
  options: { onLine?: (line: string) => void; deadlineMs?: number } = {},
): Promise<PipeResult> {
  const { onLine, deadlineMs } = options;
  const pipe = openPipe();
  let heldWriteEnd = true;
  const closeInput = () => {
    if (heldWriteEnd) closeSync(pipe.write);
    heldWriteEnd = false;
  };
  let dump: RunningProgram;
  let restic: RunningProgram;
  try {
    // At its deadline pg_dump gets SIGTERM (it stops cleanly); restic then gets SIGINT below, before EOF.
    dump = startProgram(dumpArgv, {
      env: dumpEnv,
      stdout: pipe.write,
      ...(deadlineMs ? { deadlineMs, deadlineSignal: "SIGTERM" as const } : {}),
    });
    try {
      restic = startProgram(resticArgv, {
        env: resticEnv,
        stdin: pipe.read,
        ...(deadlineMs ? { deadlineMs: deadlineMs + INTERRUPT_GRACE_MS } : {}),
        ...(onLine ? { onStdoutLine: onLine } : {}),
      });
    } catch (error) {
      void dump.stop("SIGTERM");
      throw error;
    }
  } catch (error) {
    closeInput();
    throw error;
  } finally {
    closeSync(pipe.read); // restic has its own copy; once it exits, pg_dump's writes fail
  }
  let resticEndedFirst = false;
  void restic.exited.then(() => {
    if (!dump.done) {
      resticEndedFirst = true;
      void dump.stop("SIGTERM"); // rather than leave it blocked on a pipe nobody reads
    }
  });
  try {
    const dumped = await dump.exited;
    // restic must have exited before it sees end of input, or it would save the truncated dump
    if (dumped.status !== 0) await restic.stop("SIGINT", INTERRUPT_GRACE_MS);
    closeInput();
    const { status, signal, timedOut, stdout, stderr } = await restic.exited;
    return {
      dump: {
        code: dumped.status,
        signal: dumped.signal,
        timedOut: dumped.timedOut,
        ...(deadlineMs ? { deadlineMs } : {}),
        stderr: dumped.stderr,
      },
      restic: { code: status, signal, timedOut, stdout, stderr },
      resticEndedFirst,
    };
  } finally {
    closeInput();
  }
}
