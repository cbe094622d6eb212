/**
 * Running another program (restic, pg_dump, ssh, a release's binary, pg_ctl as the Postgres
 * account) with a deadline: its output collected (the tail of it, bounded), at the deadline a
 * chosen signal (SIGINT: restic then stops cleanly without saving), SIGKILL after a grace period,
 * and an honest account of how it ended: its exit code, or the signal that ended it, and whether
 * the deadline fired.
 *
 * @example
 * const result = await runProgram(["restic", "snapshots", "--json"], { env, deadlineMs: 60_000 });
 * if (result.timedOut) throw new BackupError("RESTIC_TIMEOUT", `restic ${describeExit(result)}`);
 *
 * // streaming: pg_dump writes into a pipe the caller owns, the caller decides when to stop it
 * const dump = startProgram(["pg_dump", ...args], { stdout: pipe.write, deadlineMs: 3_600_000 });
 * if (failed) await dump.stop("SIGTERM");
 * const { status } = await dump.exited;
 *
 * // one program's output into another's input: restic dump | tar -x
 * const { producer, consumer } = await runPipeline({ argv: resticDump, options: { env } }, { argv: tarExtract });
 */
import { closeSync, constants as fs, mkdtempSync, openSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import type { FileSink } from "bun";
import { printable } from "./terminal-text.ts";

/** The system's own program directories (launchctl, systemctl, id, sh), none of which another account can write. */
export const SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin";

/**
 * A command another account may start as root (the deploy account's sudoers lines) finds its programs
 * only in SYSTEM_PATH: sudo keeps the caller's PATH wherever sudoers sets no secure_path (macOS's does
 * not), so root would run the caller's `launchctl`. Postgres' programs are looked for in their own
 * directories besides PATH (src/db/postgres-tools.ts). Children inherit it.
 */
export function useSystemPathAsRoot(): void {
  if (process.getuid?.() === 0) process.env.PATH = SYSTEM_PATH;
}

/** What the program reads: nothing, our stdin, a pipe we write (`.stdin`), a descriptor, or a stream/blob we feed it. */
export type ProgramInput = "ignore" | "inherit" | "pipe" | number | ReadableStream<Uint8Array> | Blob;
/** Where its output goes: collected into the result (the default), nowhere, our own, or a descriptor. */
export type ProgramOutput = "collect" | "ignore" | "inherit" | number;

export interface ProgramOptions {
  /** The whole environment (default: ours). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  stdin?: ProgramInput;
  stdout?: ProgramOutput;
  stderr?: ProgramOutput;
  /** Each complete line of stdout as it arrives (e.g. restic's JSON progress); stdout is still collected. */
  onStdoutLine?: (line: string) => void;
  /** From the start; when it passes, `deadlineSignal` is sent, and SIGKILL `killAfterMs` later. */
  deadlineMs?: number;
  /** Default SIGINT. */
  deadlineSignal?: NodeJS.Signals;
  /** Grace between the deadline's signal and SIGKILL; default 5 s. */
  killAfterMs?: number;
  /** How much of each collected stream is kept: its last bytes (default 32 MiB). */
  keepBytes?: number;
  /**
   * The account it runs as (setgid, setuid, and no supplementary groups of ours), e.g. the Postgres
   * account when we are root; needs root unless it is our own, which starts it as we are.
   */
  runAs?: { uid: number; gid: number };
  /** In a session and process group of its own (a service that outlives us; stop it by its group). */
  detached?: boolean;
}

export interface ProgramExit {
  /** The exit code, or null when a signal ended the program. */
  code: number | null;
  /** The signal that ended it, or null when it exited. */
  signal: NodeJS.Signals | null;
  /** What a shell would print for $?: the code, or 128 + the signal's number. */
  status: number;
  /** The deadline passed and we signalled it (it may still have exited by itself, with any code). */
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** Some collected output was dropped from the front to stay within `keepBytes`. */
  truncated: boolean;
}

export interface RunningProgram {
  readonly pid: number;
  /** Our end of its stdin when `stdin: "pipe"`. */
  readonly stdin: FileSink | undefined;
  /** Resolves once it has exited and its collected output is read. */
  readonly exited: Promise<ProgramExit>;
  /** True once it has exited. */
  readonly done: boolean;
  /** Sends `signal` now (default SIGTERM), SIGKILL after `graceMs` if it is still running; resolves with its exit. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ProgramExit>;
  /** Lets this process exit while the program still runs (with `detached`, it lives on). */
  unref(): void;
}

/** The program could not be started at all (not found, not executable). */
export class ProgramStartError extends Error {
  constructor(
    readonly program: string,
    readonly reason: string,
  ) {
    super(`cannot run ${program}: ${reason}`);
  }
}

const DEFAULT_KEEP_BYTES = 32 * 1024 * 1024;
/** After the program exits, how long a grandchild that still holds its output open may keep us waiting. */
const DRAIN_AFTER_EXIT_MS = 1000;

/** Starts `argv`; the handle's `exited` says how it ended. Throws ProgramStartError if it cannot start. */
export function startProgram(argv: string[], options: ProgramOptions = {}): RunningProgram {
  const collect = (o: ProgramOutput | undefined) => (o === undefined || o === "collect" ? "pipe" : o);
  let child: ReturnType<typeof Bun.spawn>;
  try {
    child = Bun.spawn(argv, {
      env: options.env ?? (isOtherAccount(options.runAs) ? accountEnv() : process.env),
      ...(options.cwd ? { cwd: options.cwd } : {}),
      stdin: options.stdin ?? "ignore",
      stdout: collect(options.stdout),
      stderr: collect(options.stderr),
      ...identity(options.runAs),
      ...(options.detached ? { detached: true } : {}),
    });
  } catch (error) {
    throw new ProgramStartError(argv[0] ?? "", (error as NodeJS.ErrnoException).code ?? (error as Error).message);
  }
  const keep = options.keepBytes ?? DEFAULT_KEEP_BYTES;
  const exitedRaw = child.exited.then(() => undefined);
  const stdout = readTail(child.stdout, keep, exitedRaw, options.onStdoutLine);
  const stderr = readTail(child.stderr, keep, exitedRaw);
  let timedOut = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = (signal: NodeJS.Signals = "SIGTERM", graceMs = options.killAfterMs ?? 5000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      if (signal !== "SIGKILL" && !killTimer) killTimer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    }
    return exited;
  };
  const deadlineTimer =
    options.deadlineMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          void stop(options.deadlineSignal ?? "SIGINT");
        }, options.deadlineMs);
  const exited: Promise<ProgramExit> = (async () => {
    await child.exited;
    clearTimeout(deadlineTimer);
    clearTimeout(killTimer);
    const [out, err] = await Promise.all([stdout, stderr]);
    const signal = (child.signalCode as NodeJS.Signals | null) ?? null;
    const code = signal ? null : child.exitCode;
    return {
      code,
      signal,
      status: code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0),
      timedOut,
      stdout: out.text,
      stderr: err.text,
      truncated: out.truncated || err.truncated,
    };
  })();
  return {
    pid: child.pid,
    stdin: options.stdin === "pipe" ? (child.stdin as FileSink) : undefined,
    exited,
    get done() {
      return child.exitCode !== null || child.signalCode !== null;
    },
    stop,
    unref: () => child.unref(),
  };
}

/** The uid and gid to start a child with: none when they are ours (an unprivileged process may not set them). */
function identity(runAs: ProgramOptions["runAs"]): { uid?: number; gid?: number } {
  if (!isOtherAccount(runAs)) return {};
  return { uid: runAs!.uid, gid: runAs!.gid };
}

function isOtherAccount(runAs: ProgramOptions["runAs"]): boolean {
  return Boolean(runAs && (runAs.uid !== process.getuid?.() || runAs.gid !== process.getgid?.()));
}

/**
 * What a program started as another account (the Postgres account, from root) inherits unless the
 * caller passes an env: how to find programs, the locale, the time zone and where temp files go.
 * The rest of our environment (a developer's shell under `up --dev`, a service manager's variables)
 * is not that account's to read.
 */
function accountEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env))
    if (value !== undefined && (/^(PATH|LANG|LANGUAGE|TZ|TMPDIR)$/.test(name) || name.startsWith("LC_")))
      env[name] = value;
  return env;
}

/** Runs `argv` to the end (or its deadline); a program that cannot start rejects with ProgramStartError. */
export async function runProgram(argv: string[], options: ProgramOptions = {}): Promise<ProgramExit> {
  return startProgram(argv, options).exited;
}

export interface Stage {
  argv: string[];
  options?: ProgramOptions;
}

export interface PipelineExit {
  producer: ProgramExit;
  consumer: ProgramExit;
  /** The consumer ended while the producer still ran, so we stopped the producer (SIGTERM). */
  producerStopped: boolean;
}

/**
 * The producer's stdout straight into the consumer's stdin through one OS pipe (no byte passes
 * through us). When the consumer ends first, the producer is stopped rather than left blocked on a
 * full pipe or a slow source; each keeps its own deadline, and a producer stopped at its deadline
 * ends the consumer's input.
 */
export async function runPipeline(producer: Stage, consumer: Stage): Promise<PipelineExit> {
  const pipe = openPipe();
  let first: RunningProgram;
  let second: RunningProgram;
  try {
    first = startProgram(producer.argv, { ...producer.options, stdout: pipe.write });
    try {
      second = startProgram(consumer.argv, { ...consumer.options, stdin: pipe.read });
    } catch (error) {
      void first.stop("SIGTERM");
      throw error;
    }
  } finally {
    closeSync(pipe.read); // each child has its own copy: the consumer sees EOF when the producer ends,
    closeSync(pipe.write); // and the producer's writes fail once the consumer is gone
  }
  let producerStopped = false;
  void second.exited.then(() => {
    if (first.done) return;
    producerStopped = true;
    void first.stop("SIGTERM");
  });
  const [producerExit, consumerExit] = await Promise.all([first.exited, second.exited]);
  return { producer: producerExit, consumer: consumerExit, producerStopped };
}

/**
 * An OS pipe as two descriptors (Bun has no pipe(2)): a FIFO in a private directory, opened
 * read-write first so that neither end's blocking open waits for the other, then unlinked, so
 * nothing else can ever open it.
 */
export function openPipe(): { read: number; write: number } {
  const dir = mkdtempSync(join(tmpdir(), "axe-pipe-"));
  try {
    const path = join(dir, "pipe");
    const made = Bun.spawnSync(["mkfifo", "-m", "600", path], { stdout: "ignore", stderr: "pipe" });
    if (made.exitCode !== 0) throw new Error(`mkfifo failed: ${made.stderr.toString().trim()}`);
    const both = openSync(path, fs.O_RDWR); // Linux and macOS open a FIFO read-write without waiting
    try {
      const read = openSync(path, fs.O_RDONLY);
      try {
        return { read, write: openSync(path, fs.O_WRONLY) };
      } catch (error) {
        closeSync(read);
        throw error;
      }
    } finally {
      closeSync(both);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** "exited 3", "killed by SIGKILL after its 60000 ms deadline", for messages. */
export function describeExit(exit: Pick<ProgramExit, "code" | "signal" | "timedOut">, deadlineMs?: number): string {
  const how = exit.signal ? `killed by ${exit.signal}` : `exited ${exit.code}`;
  if (!exit.timedOut) return how;
  return `did not finish within ${deadlineMs === undefined ? "its deadline" : `${deadlineMs} ms`} (${how})`;
}

/** The last lines of a program's output, joined for a one-line message. */
export function lastLines(text: string, count = 3, separator = "; "): string {
  // Another program's words go into messages a terminal shows: nothing in them may steer it.
  return printable(text.trim().split(/\r?\n/).filter(Boolean).slice(-count).join(separator));
}

async function readTail(
  stream: ReadableStream<Uint8Array> | number | undefined | null,
  keep: number,
  exited: Promise<void>,
  onLine?: (line: string) => void,
): Promise<{ text: string; truncated: boolean }> {
  if (!stream || typeof stream === "number") return { text: "", truncated: false };
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  const decoder = new TextDecoder();
  let pending = "";
  const reader = stream.getReader();
  const read = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      chunks.push(value);
      size += value.length;
      while (size > keep) {
        const first = chunks[0]!;
        const over = size - keep;
        if (first.length <= over) chunks.shift();
        else chunks[0] = first.subarray(over);
        size -= Math.min(first.length, over);
        truncated = true;
      }
      if (!onLine) continue;
      pending += decoder.decode(value, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) if (line.trim()) onLine(line);
    }
  })();
  const drained = await Promise.race([
    read.then(() => true),
    exited.then(() => Bun.sleep(DRAIN_AFTER_EXIT_MS)).then(() => false),
  ]);
  if (!drained) await reader.cancel().catch(() => {});
  if (onLine && pending.trim()) onLine(pending);
  return { text: Buffer.concat(chunks).toString("utf8"), truncated };
}
