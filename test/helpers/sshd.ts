/**
 * A real sshd on 127.0.0.1 for tests (ring backups, deploy push, fleet status): its own host key,
 * one client key, an authorized_keys line with an optional forced command, and the ssh options a
 * client needs to reach it. Stop it with `stop()` (its sessions too); one a test did not stop is
 * stopped when its test file is done, and its directory removed.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { isAlive, listensOn, processesWithEnv, processTree, stopProcesses } from "./processes.ts";
import { afterFile, tempDir } from "./tmp.ts";
import { waitFor } from "./wait.ts";

export { freePort }; // benches import it from here

/**
 * ssh's ConnectTimeout also bounds the banner exchange, which waits for sshd to fork and load its
 * keys: seconds on a loaded 2-core machine. Tests about an unreachable peer set their own.
 */
export const CONNECT_TIMEOUT_S = 60;

export interface TestSshd {
  port: number;
  /** The sshd's PID, for tests that stop it (SIGSTOP: it accepts TCP but never answers). */
  pid: number;
  user: string;
  dir: string;
  /** Private key of the authorized client (0600). */
  clientKey: string;
  /** `ssh` options that reach this server non-interactively, reading no ssh_config of this machine or ~/.ssh. */
  sshOptions: string[];
  /** An ssh_config file with Host `name` pointing here, for tools that take `-F` (another account and key if given). */
  configFile(name: string, login?: { user: string; key: string }): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** Forced command for the client key (what `command="..."` in authorized_keys does). */
  forcedCommand?: string;
  /** Environment the forced command needs (written to the sshd's SetEnv). */
  env?: Record<string, string>;
  /** Lines appended to sshd_config (e.g. an Include of a file with Match blocks). */
  extraConfig?: string[];
  /** Read keys from this file (e.g. one install.sh writes) instead of writing our own line. */
  authorizedKeysFile?: string;
}

export async function startSshd(options: SshdOptions = {}): Promise<TestSshd> {
  const dir = tempDir("axe-sshd");
  const hostKey = join(dir, "host_ed25519");
  const clientKey = join(dir, "client_ed25519");
  keygen(hostKey, "test-host");
  keygen(clientKey, "operator@test");
  const publicKey = (await Bun.file(`${clientKey}.pub`).text()).trim();
  const restrict = options.forcedCommand ? `restrict,command="${options.forcedCommand.replaceAll('"', '\\"')}" ` : "";
  if (!options.authorizedKeysFile)
    writeFileSync(join(dir, "authorized_keys"), `${restrict}${publicKey}\n`, { mode: 0o600 });
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // privilege separation dir
  const setEnv = Object.entries(options.env ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  const config = (port: number) =>
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${options.authorizedKeysFile ?? join(dir, "authorized_keys")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "PermitRootLogin prohibit-password",
      "StrictModes no",
      "UsePAM no",
      "Subsystem sftp internal-sftp",
      "LogLevel ERROR",
      ...(setEnv ? [`SetEnv ${setEnv}`] : []),
      ...(options.extraConfig ?? []),
      "",
    ].join("\n");
  // A port nothing listened on a moment ago can be taken by another program (another worker's test)
  // before sshd binds it: sshd then exits saying so, and it starts again on another port.
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 1; !child; attempt++) {
    port = await freePort();
    writeFileSync(join(dir, "sshd_config"), config(port));
    const started = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const startedPort = port;
    afterFile(() => {
      if (started.exitCode === null) stopProcesses([...processTree(started.pid!), ...sessionsOf(startedPort)]); // a test that never got to stop() it
    });
    let stderr = "";
    started.stderr!.on("data", (chunk) => (stderr += chunk));
    const closed = new Promise((resolve) => started.once("close", resolve)); // its stderr read to the end
    if ((await waitForListen(port, started)) === "listening") child = started;
    else {
      await closed;
      if (!/Address already in use/.test(stderr) || attempt === 5)
        throw new Error(`sshd exited (${started.exitCode}): ${stderr}`);
    }
  }
  const user = spawnSync("id", ["-un"], { encoding: "utf8" }).stdout.trim(); // os.userInfo() can say "unknown" here
  const sshOptions = [
    "-p",
    String(port),
    "-i",
    clientKey,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    `UserKnownHostsFile=${join(dir, "known_hosts")}`,
    "-o",
    `ConnectTimeout=${CONNECT_TIMEOUT_S}`,
    "-o",
    "LogLevel=ERROR",
    "-F",
    "/dev/null", // last (tests slice the front off): neither ~/.ssh/config nor /etc/ssh/ssh_config
  ];
  return {
    port,
    pid: child.pid!,
    user,
    dir,
    clientKey,
    sshOptions,
    configFile(name: string, login?: { user: string; key: string }) {
      const file = join(dir, `ssh_config_${name}`);
      writeFileSync(
        file,
        [
          `Host ${name}`,
          "  HostName 127.0.0.1",
          `  Port ${port}`,
          `  User ${login?.user ?? user}`,
          `  IdentityFile ${login?.key ?? clientKey}`,
          "  IdentitiesOnly yes",
          "  BatchMode yes",
          "  StrictHostKeyChecking no",
          `  UserKnownHostsFile ${join(dir, "known_hosts")}`,
          `  ConnectTimeout ${CONNECT_TIMEOUT_S}`,
          "  LogLevel ERROR",
          "",
        ].join("\n"),
        { mode: 0o600 },
      );
      return file;
    },
    async stop() {
      const tree = processTree(child.pid!); // its sessions and their commands, which outlive the listener
      await stopChild(child);
      stopProcesses([...tree.filter((p) => p.pid !== child.pid && isAlive(p.pid)), ...sessionsOf(port)]);
    },
  };
}

/** Commands run for this sshd's clients, whose session has gone (a client killed at a timeout): orphans now, known by their SSH_CONNECTION. */
function sessionsOf(port: number) {
  return processesWithEnv("SSH_CONNECTION", (value) => value.endsWith(` 127.0.0.1 ${port}`));
}

function keygen(file: string, comment: string): void {
  const result = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file], {
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`ssh-keygen failed: ${result.stderr}`);
}

/** Waits until sshd itself listens on `port` (not whatever may answer there), or has exited. */
async function waitForListen(port: number, child: ChildProcess): Promise<"listening" | "exited"> {
  return waitFor(
    `sshd to listen on 127.0.0.1:${port}`,
    async () => {
      if (child.exitCode !== null) return "exited" as const;
      const own = listensOn(child.pid!, port);
      if (own !== undefined) return own && ("listening" as const);
      // no /proc: that something accepts connections there is all we can know
      return new Promise<"listening" | false>((resolve) => {
        const socket = Bun.connect({
          hostname: "127.0.0.1",
          port,
          socket: {
            open: (s) => (s.end(), resolve("listening")),
            data() {},
            error: () => resolve(false),
            connectError: () => resolve(false),
          },
        });
        socket.catch(() => resolve(false));
      });
    },
    { intervalMs: 50 },
  );
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 3000).unref();
  });
}
