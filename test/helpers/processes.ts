/**
 * Processes a test leaves behind, found the only way that works for daemons (a Postgres started
 * by `serve`, colors started by a receiver, an sshd's sessions): by what they name. Linux only
 * (/proc); elsewhere these find nothing. Stopping waits synchronously (a cleanup may run from an
 * exit handler): SIGQUIT for a postmaster (immediate shutdown, which removes its shared memory),
 * SIGTERM for anything else, then SIGKILL for what is still there after a few seconds.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";

export interface Found {
  pid: number;
  command: string;
}

function processes(): Array<Found & { ppid: number }> {
  let names: string[];
  try {
    names = readdirSync("/proc").filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  const all: Array<Found & { ppid: number }> = [];
  for (const name of names) {
    try {
      const command = readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " ").trim();
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (command) all.push({ pid: Number(name), ppid, command });
    } catch {
      // gone meanwhile
    }
  }
  return all;
}

/** The processes whose command line names a path inside one of `dirs` (never this process). */
export function processesNaming(dirs: string[]): Found[] {
  if (dirs.length === 0) return [];
  return processes()
    .filter((p) => p.pid !== process.pid && dirs.some((dir) => p.command.includes(dir)))
    .map(({ pid, command }) => ({ pid, command }));
}

/** The processes whose environment has `name` set to a value `matches` accepts (root reads anyone's). */
export function processesWithEnv(name: string, matches: (value: string) => boolean): Found[] {
  return processes()
    .filter((p) => {
      if (p.pid === process.pid) return false;
      try {
        const entry = readFileSync(`/proc/${p.pid}/environ`, "utf8")
          .split("\0")
          .find((e) => e.startsWith(`${name}=`));
        return entry !== undefined && matches(entry.slice(name.length + 1));
      } catch {
        return false;
      }
    })
    .map(({ pid, command }) => ({ pid, command }));
}

/** `pid` and everything it started, children first. */
export function processTree(pid: number): Found[] {
  const all = processes();
  const tree: Found[] = [];
  const visit = (parent: number) => {
    for (const child of all.filter((p) => p.ppid === parent)) visit(child.pid);
    const self = all.find((p) => p.pid === parent);
    if (self) tree.push({ pid: self.pid, command: self.command });
  };
  visit(pid);
  return tree;
}

/** Alive and not a zombie (one of our children that exited is a zombie until the event loop reaps it). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: kill(0) is all we know
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Stops each process and waits (synchronously, at most `graceMs`) before SIGKILL, then as long
 * again for what was killed to be gone: a SIGKILLed process lives until the kernel runs it once
 * more, and a caller may look right after this returns.
 */
export function stopProcesses(found: Found[], graceMs = 5_000): void {
  for (const { pid, command } of found) signal(pid, /(^|\/)postgres -D /.test(command) ? "SIGQUIT" : "SIGTERM");
  const waitGone = () => {
    const deadline = Date.now() + graceMs;
    while (found.some((p) => isAlive(p.pid)) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 50);
  };
  waitGone();
  const killed = found.filter((p) => isAlive(p.pid));
  for (const { pid } of killed) signal(pid, "SIGKILL");
  if (killed.length > 0) waitGone();
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

interface TcpSocket {
  localPort: number;
  remotePort: number;
  /** /proc/net/tcp's state: 01 established, 0A listening. */
  state: string;
  /** Bytes that arrived and the owner has not read yet. */
  unread: number;
  inode: string;
}

/** Every TCP socket of this network namespace (/proc/net/tcp and tcp6); undefined where there is no /proc. */
function tcpSockets(): TcpSocket[] | undefined {
  const tables = ["/proc/net/tcp", "/proc/net/tcp6"].filter((t) => existsSync(t));
  if (tables.length === 0) return undefined;
  const port = (address: string) => Number.parseInt(address.slice(address.lastIndexOf(":") + 1), 16);
  const sockets: TcpSocket[] = [];
  for (const table of tables)
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const [, local, remote, state, queues, , , , , inode] = line.trim().split(/\s+/);
      if (!local || !remote || !state || !queues || !inode) continue;
      const unread = Number.parseInt(queues.split(":")[1]!, 16);
      sockets.push({ localPort: port(local), remotePort: port(remote), state, unread, inode });
    }
  return sockets;
}

/** Whether `pid` holds the socket with this inode among its open files. */
function holds(pid: number, inode: string): boolean {
  if (inode === "0") return false; // not accepted yet: no file of anyone's
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/**
 * Whether process `pid` has accepted the loopback TCP connection from `clientPort` to its
 * `serverPort` and read everything that arrived on it (nothing waits in its receive queue). A
 * client that wrote a request's head first knows then that the server holds a request, not an
 * idle connection (which a server may close when it stops). Linux only (/proc/net/tcp): where
 * there is no /proc this says true, and a caller's wait on it is none.
 */
export function hasReadConnection(pid: number, serverPort: number, clientPort: number): boolean {
  const sockets = tcpSockets();
  if (!sockets) return true;
  const socket = sockets.find((s) => s.localPort === serverPort && s.remotePort === clientPort && s.state === "01");
  return socket !== undefined && socket.unread === 0 && holds(pid, socket.inode);
}

/**
 * Whether process `pid` itself listens on TCP `port`: not merely whether something answers there,
 * which may be another program that took the port first. Linux only; undefined where there is no /proc.
 */
export function listensOn(pid: number, port: number): boolean | undefined {
  const sockets = tcpSockets();
  if (!sockets) return undefined;
  return sockets.some((s) => s.localPort === port && s.state === "0A" && holds(pid, s.inode));
}
