/**
 * `backup sftp-guard -- COMMAND...`: the ring's sftp.command runs through this. It starts COMMAND
 * (the ssh to the peer), relays the SFTP stream both ways unchanged, and reads along for one thing:
 * a key file (`keys/<id>`) the peer serves must ask for a bounded scrypt. restic derives each key
 * file with the parameters written in it, before it can tell whether the file is ours, so a peer
 * (another customer's machine) that rewrites N or r made our restic allocate 128·N·r bytes (32 GiB
 * for N = 2^25) at every run and every WAL ship. A key file over the bounds, too long, or not
 * JSON ends in an SFTP failure instead of its end of file, and a line on stderr says why.
 *
 * The check has to be in the stream restic reads: a separate look beforehand would be answered by
 * the peer with a harmless file, and the next session with the harmful one.
 */
import { spawn } from "node:child_process";

/** restic's own calibration stops below 60 MiB of memory and aims at half a second. */
export const KEY_MAX_MEMORY = 128 * 1024 * 1024;
/** Memory times p, the work of one derivation: generous for a fast machine's calibration (p up to ~30). */
export const KEY_MAX_WORK = 4 * 1024 * 1024 * 1024;
/** Under one SFTP read (32 KiB), so restic reads a key file to its end, which waits for the check. */
export const KEY_MAX_BYTES = 16 * 1024;
/** How the refusal reads on stderr (restic relays it; resticFailure recognises it). */
export const KEY_REFUSED = "axe-appliance sftp-guard: refused the peer's key file";

const FXP = { OPEN: 3, CLOSE: 4, READ: 5, STATUS: 101, HANDLE: 102, DATA: 103 } as const;
const FX_EOF = 1;
const FX_FAILURE = 4;

/** Why a key file's bytes must not reach restic, or undefined when they may. */
export function keyFileProblem(bytes: Buffer): string | undefined {
  if (bytes.length > KEY_MAX_BYTES) return `it is over ${KEY_MAX_BYTES} bytes`;
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch {
    return "it is not JSON";
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) return "it is not a JSON object";
  // restic (Go) matches JSON names without regard to case: every spelling counts
  const params: Record<"n" | "r" | "p", number[]> = { n: [], r: [], p: [] };
  for (const [name, v] of Object.entries(value)) {
    const key = name.toLowerCase();
    if (key !== "n" && key !== "r" && key !== "p") continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return `its ${name} is ${JSON.stringify(v)}`;
    params[key].push(v);
  }
  const n = Math.max(0, ...params.n);
  const r = Math.max(0, ...params.r);
  const p = Math.max(0, ...params.p);
  const memory = 128 * n * r;
  if (memory > KEY_MAX_MEMORY || memory * p > KEY_MAX_WORK)
    return `its scrypt parameters (N=${n}, r=${r}, p=${p}) would take ${Math.round(memory / 2 ** 20)} MiB and ${Math.round((memory * p) / 2 ** 20)} MiB of work per try (at most ${KEY_MAX_MEMORY / 2 ** 20} MiB and ${KEY_MAX_WORK / 2 ** 20} MiB)`;
  return undefined;
}

/** Splits a byte stream into SFTP packets (uint32 length, then that many bytes). */
class Framer {
  private pending: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: Buffer[] = [];
    while (this.pending.length >= 4) {
      const total = 4 + this.pending.readUInt32BE(0);
      if (this.pending.length < total) break;
      out.push(this.pending.subarray(0, total));
      this.pending = this.pending.subarray(total);
    }
    return out;
  }
}

const readString = (packet: Buffer, at: number): [Buffer, number] | undefined => {
  if (packet.length < at + 4) return undefined;
  const length = packet.readUInt32BE(at);
  if (packet.length < at + 4 + length) return undefined;
  return [packet.subarray(at + 4, at + 4 + length), at + 4 + length];
};

function statusPacket(id: number, code: number, message: string): Buffer {
  const text = Buffer.from(message, "utf8");
  const body = Buffer.alloc(1 + 4 + 4 + 4 + text.length + 4);
  let at = body.writeUInt8(FXP.STATUS, 0);
  at = body.writeUInt32BE(id, at);
  at = body.writeUInt32BE(code, at);
  at = body.writeUInt32BE(text.length, at);
  at += text.copy(body, at);
  body.writeUInt32BE(0, at); // language tag: empty
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length, 0);
  return Buffer.concat([length, body]);
}

/** The SFTP conversation's bookkeeping: which handles are key files, which reads are theirs. */
export class KeyFileGuard {
  private readonly opening = new Map<number, string>();
  private readonly handles = new Map<string, { path: string; bytes: Buffer[]; size: number }>();
  private readonly reads = new Map<number, string>();
  constructor(private readonly refuse: (line: string) => void) {}

  /** A packet from restic to the peer: noted, passed on unchanged. */
  fromClient(packet: Buffer): void {
    const type = packet[4];
    if (packet.length < 9) return;
    const id = packet.readUInt32BE(5);
    if (type === FXP.OPEN) {
      const name = readString(packet, 9)?.[0].toString("utf8");
      if (name && /(^|\/)keys\/[0-9a-f]{64}$/.test(name)) this.opening.set(id, name);
    } else if (type === FXP.READ) {
      const handle = readString(packet, 9)?.[0].toString("hex");
      if (handle && this.handles.has(handle)) this.reads.set(id, handle);
    } else if (type === FXP.CLOSE) {
      const handle = readString(packet, 9)?.[0].toString("hex");
      if (handle) this.handles.delete(handle);
    }
  }

  /** A packet from the peer to restic: what to pass on instead (the same packet, or a failure). */
  fromServer(packet: Buffer): Buffer {
    const type = packet[4];
    if (packet.length < 9) return packet;
    const id = packet.readUInt32BE(5);
    if (type === FXP.HANDLE && this.opening.has(id)) {
      const handle = readString(packet, 9)?.[0].toString("hex");
      if (handle) this.handles.set(handle, { path: this.opening.get(id)!, bytes: [], size: 0 });
      this.opening.delete(id);
      return packet;
    }
    if (type === FXP.STATUS) this.opening.delete(id);
    const handle = this.reads.get(id);
    if (handle === undefined) return packet;
    this.reads.delete(id);
    const file = this.handles.get(handle);
    if (!file) return packet;
    if (type === FXP.DATA) {
      const data = readString(packet, 9)?.[0];
      if (data) {
        file.bytes.push(Buffer.from(data));
        file.size += data.length;
      }
      if (file.size <= KEY_MAX_BYTES) return packet;
    } else if (type !== FXP.STATUS || packet.length < 13 || packet.readUInt32BE(9) !== FX_EOF) return packet;
    // the whole file (or too much of it) has passed: only now may restic see its end
    const problem = keyFileProblem(Buffer.concat(file.bytes));
    if (!problem) return packet;
    this.handles.delete(handle);
    const line = `${KEY_REFUSED} ${file.path}: ${problem}`;
    this.refuse(line);
    return statusPacket(id, FX_FAILURE, line);
  }
}

/** Runs `argv` (the ssh to the peer) with the SFTP stream between it and us guarded; resolves to its exit code. */
export function runSftpGuard(argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
    const guard = new KeyFileGuard((line) => process.stderr.write(`${line}\n`));
    const up = new Framer();
    const down = new Framer();
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      resolve(code);
    };
    child.on("error", (error) => {
      process.stderr.write(`axe-appliance sftp-guard: cannot run ${argv[0]}: ${error.message}\n`);
      finish(255);
    });
    // after its output is all read; then after ours is written
    child.on("close", (code, signal) => {
      const exit = code ?? (signal ? 128 + 15 : 255);
      if (process.stdout.writableNeedDrain) process.stdout.once("drain", () => finish(exit));
      else finish(exit);
    });
    process.stdin.on("data", (chunk: Buffer) => {
      for (const packet of up.push(chunk)) guard.fromClient(packet);
      if (!child.stdin!.write(chunk)) {
        process.stdin.pause();
        child.stdin!.once("drain", () => process.stdin.resume());
      }
    });
    // restic closed the session (or died): so does the peer's
    process.stdin.on("end", () => {
      child.stdin!.end();
      setTimeout(() => child.kill("SIGTERM"), 2000).unref();
    });
    child.stdin!.on("error", () => {});
    child.stdout!.on("data", (chunk: Buffer) => {
      const out = Buffer.concat(down.push(chunk).map((packet) => guard.fromServer(packet)));
      if (out.length && !process.stdout.write(out)) {
        child.stdout!.pause();
        process.stdout.once("drain", () => child.stdout!.resume());
      }
    });
    process.stdout.on("error", () => child.kill("SIGTERM"));
  });
}
