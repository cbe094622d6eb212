/**
 * The child-process backend: each service is a detached process (its own process group) whose
 * PID file lives in {data_dir}/run/services/<name>.pid and whose output goes to
 * {data_dir}/logs/<name>.log. Detached, so a color started by `deploy receive` outlives the
 * receiver; PID files, so the next receiver (or `up`'s supervisor) finds it again.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import type { Config } from "../config/load.ts";
import { frameAccount } from "../config/run-as.ts";
import { writeFileAtomic } from "../lib/atomic-write.ts";
import { parseJsonOrUndefined } from "../lib/json.ts";
import { isAlive } from "../lib/lock-file.ts";
import { pollUntil } from "../lib/poll.ts";
import { ProgramStartError, type RunningProgram, startProgram } from "../lib/program.ts";
import { type ServiceBackend, type ServiceName, type ServiceSpec, type ServiceStatus, serviceSpec } from "./backend.ts";

/**
 * A PID file: written by whichever process started the service, read by the next one (another
 * receiver, `up`). Defends against a file naming PID 0 or 1: stop signals -pid, and kill(0) is our
 * own process group, kill(-1) every process we may signal.
 */
const PidRecordSchema = z.object({ pid: z.number().int().min(2), release: z.string(), startedAt: z.string() });
type PidRecord = z.infer<typeof PidRecordSchema>;

/** Children this process spawned, so their exit is reaped and seen at once. */
const spawned = new Map<number, RunningProgram>();

export interface ChildBackendOptions {
  /** How long a service gets between SIGTERM and SIGKILL. */
  stopTimeoutMs?: number;
  /** Overrides what a service runs (tests, `up` from source). */
  spec?: (name: ServiceName) => ServiceSpec;
}

/** How much of a log's end `lastWords` reads: a stack trace or two. */
const LAST_WORDS_BYTES = 8192;

export class ChildBackend implements ServiceBackend {
  readonly kind = "child" as const;
  private readonly dir: string;
  /** Where each service's log stood when this backend last started it. */
  private readonly logFrom = new Map<ServiceName, number>();
  constructor(
    private readonly config: Config,
    private readonly options: ChildBackendOptions = {},
  ) {
    this.dir = join(config.paths.run, "services");
  }

  spec(name: ServiceName): ServiceSpec {
    return this.options.spec?.(name) ?? serviceSpec(this.config, name);
  }

  async start(name: ServiceName): Promise<void> {
    if ((await this.status(name)).running) return;
    const spec = this.spec(name);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    mkdirSync(dirname(spec.logFile), { recursive: true, mode: 0o700 }); // as install.sh makes it: the logs are ours alone
    const log = openSync(spec.logFile, "a", 0o600);
    this.logFrom.set(name, fstatSync(log).size);
    let child: RunningProgram;
    try {
      // as the service units start them: blue and green as frame.run_as when we are root (decision 79)
      const runAs = name === "proxy" ? undefined : await frameAccount(this.config);
      child = startProgram([spec.program, ...spec.args], {
        detached: true,
        stdout: log,
        stderr: log,
        env: { ...process.env, ...spec.env },
        ...(runAs ? { runAs } : {}),
      });
    } catch (error) {
      const why = error instanceof ProgramStartError ? error.reason : (error as Error).message;
      throw new Error(`${name}: cannot start ${spec.program}: ${why}`);
    } finally {
      closeSync(log);
    }
    const { pid } = child;
    spawned.set(pid, child);
    void child.exited.then(() => spawned.delete(pid));
    child.unref();
    const record: PidRecord = { pid, release: spec.release, startedAt: new Date().toISOString() };
    writeFileAtomic(this.pidFile(name), `${JSON.stringify(record)}\n`, { mode: 0o600 });
  }

  async stop(name: ServiceName): Promise<void> {
    const record = this.read(name);
    if (!record) return;
    const timeout = this.options.stopTimeoutMs ?? 15_000;
    const gone = () => (running(record.pid) ? undefined : true);
    signal(record.pid, "SIGTERM");
    if (!(await pollUntil(gone, { timeoutMs: timeout, intervalMs: 50 }))) {
      signal(record.pid, "SIGKILL");
      await pollUntil(gone, { timeoutMs: Number.POSITIVE_INFINITY, intervalMs: 20 });
    }
    rmSync(this.pidFile(name), { force: true });
  }

  async restart(name: ServiceName): Promise<void> {
    const marker = this.markerFile(name);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileSync(marker, String(process.pid)); // tells `up`'s supervisor this stop is on purpose
    try {
      await this.stop(name);
      await this.start(name);
    } finally {
      rmSync(marker, { force: true });
    }
  }

  async status(name: ServiceName): Promise<ServiceStatus> {
    const record = this.read(name);
    if (!record || !running(record.pid)) return { name, running: false };
    return { name, running: true, pid: record.pid, release: record.release };
  }

  /**
   * The last error line (`error: ...`, as main prints an AppError) a service wrote since this
   * backend last started it, without the prefix; undefined when it said none (or was not started here).
   */
  lastWords(name: ServiceName): string | undefined {
    const from = this.logFrom.get(name);
    if (from === undefined) return undefined;
    let fd: number;
    try {
      fd = openSync(this.spec(name).logFile, "r");
    } catch {
      return undefined;
    }
    try {
      const start = Math.max(from, fstatSync(fd).size - LAST_WORDS_BYTES);
      const buffer = Buffer.alloc(LAST_WORDS_BYTES);
      const text = buffer.toString("utf8", 0, readSync(fd, buffer, 0, LAST_WORDS_BYTES, start));
      const line = text.split("\n").findLast((l) => l.startsWith("error: "));
      return line?.slice("error: ".length).trim() || undefined;
    } finally {
      closeSync(fd);
    }
  }

  /** True while another process restarts `name` on purpose. */
  restarting(name: ServiceName): boolean {
    const marker = this.markerFile(name);
    if (!existsSync(marker)) return false;
    const pid = Number(readFileSync(marker, "utf8"));
    return pid > 1 && isAlive(pid);
  }

  private read(name: ServiceName): PidRecord | undefined {
    let text: string;
    try {
      text = readFileSync(this.pidFile(name), "utf8");
    } catch {
      return undefined;
    }
    const record = PidRecordSchema.safeParse(parseJsonOrUndefined(text));
    return record.success ? record.data : undefined; // a torn or foreign file names no process of ours
  }

  private pidFile(name: ServiceName): string {
    return join(this.dir, `${name}.pid`);
  }

  private markerFile(name: ServiceName): string {
    return join(this.dir, `${name}.restarting`);
  }
}

/** Signals the service's process group (it may have children of its own), else the process. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** Alive and not a zombie (an orphan that nobody reaped yet is as good as dead). */
function running(pid: number): boolean {
  const child = spawned.get(pid);
  if (child) return !child.done;
  if (!isAlive(pid)) return false;
  if (process.platform !== "linux") return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}
