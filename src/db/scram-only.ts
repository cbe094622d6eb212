/**
 * A password goes to Postgres through SCRAM-SHA-256 only. While the database is down (a restart,
 * Docker Desktop not yet started after a reboot) any local account can listen on its port, and
 * postgres.js answers whatever the server asks: the password in clear, or its MD5 hash (as good as
 * the password against an md5 server), and it goes on without a password when told "ok" at once.
 * This watches a new connection's authentication, before postgres.js reads it, and closes the
 * connection unless the server runs SCRAM to its end (whose last message, checked by postgres.js,
 * proves the server holds the password's verifier) with at least Postgres' default 4,096 rounds (a
 * lower count would make the client's proof cheap to guess from). Decision 75.
 */
import { connect as connectSocket, type Socket } from "node:net";
import { DatabaseError } from "../lib/errors.ts";

const AUTHENTICATION = 0x52; // 'R'
const ERROR = 0x45; // 'E': the server refused; postgres.js reports it
const MIN_ITERATIONS = 4096;
/** A longer authentication message is not Postgres': SASL ones are a few hundred bytes. */
const MAX_MESSAGE = 8_192;

const METHODS: Record<number, string> = {
  2: "Kerberos",
  3: "the password in clear text",
  5: "an MD5 hash of the password",
  7: "GSSAPI",
  9: "SSPI",
};

/** A connecting socket for postgres.js (its `socket` option) that refuses anything but SCRAM. */
export function scramOnlySocket(where: { path: string } | { host: string; port: number }): Socket {
  const socket = "path" in where ? connectSocket(where.path) : connectSocket(where.port, where.host);
  const name = "path" in where ? where.path : `${where.host}:${where.port}`;
  let pending: Buffer | undefined;
  let proved = false;
  let watching = true;
  let refused = false;
  const refuse = (why: string) => {
    watching = false;
    refused = true;
    socket.destroy(
      new DatabaseError(
        "DB_AUTH_NOT_SCRAM",
        `what answers on ${name} ${why}; the database password is only ever sent through SCRAM-SHA-256`,
        "if this is your Postgres: set password_encryption = 'scram-sha-256', set the role's password again and use scram-sha-256 in pg_hba.conf; else another program holds the database's port (see who listens there)",
      ),
    );
  };
  const watch = (chunk: Buffer) => {
    let data = pending ? Buffer.concat([pending, chunk]) : chunk;
    while (data.length >= 5) {
      const type = data[0]!;
      const length = data.readUInt32BE(1);
      if (type === ERROR) return void (watching = false);
      if (type !== AUTHENTICATION) return refuse("sent a message before authenticating");
      if (length < 8 || length > MAX_MESSAGE) return refuse("sent a malformed authentication message");
      if (data.length < 1 + length) break;
      const code = data.readUInt32BE(5);
      if (code === 0) {
        if (!proved) return refuse("let the connection in without SCRAM proving it knows the password");
        return void (watching = false);
      }
      if (code === 11) {
        const rounds = /(?:^|,)i=(\d+)/.exec(data.toString("utf8", 9, 1 + length))?.[1];
        if (Number(rounds ?? 0) < MIN_ITERATIONS) return refuse(`asked for SCRAM with ${rounds ?? "no"} rounds`);
      } else if (code === 12) proved = true;
      else if (code !== 10) return refuse(`asked for ${METHODS[code] ?? `authentication method ${code}`}`);
      data = data.subarray(1 + length);
    }
    pending = data.length > 0 ? Buffer.from(data) : undefined;
  };
  // A connection that fails at once (a socket file that is gone: the cluster stopped) can emit its
  // error, and then its close, before postgres.js listens (it asks for the socket and awaits it). An
  // error nobody hears ends the process; a close nobody hears leaves the connection out of the pool
  // for good, and a pool of those never asks again. Both are held until postgres.js listens.
  let early: Error | undefined;
  let closedEarly: boolean | undefined; // the close's hadError
  const hold = (error: Error) => void (early ??= error);
  const holdClose = (hadError: boolean) => void (closedEarly ??= hadError);
  socket.on("error", hold);
  socket.on("close", holdClose);
  // postgres.js's reader gets each read after the watch, and none from the read that was refused
  const on = socket.on.bind(socket);
  socket.on = ((event: string, listener: (...args: unknown[]) => void) => {
    if (event === "error") {
      socket.off("error", hold);
      if (early) queueMicrotask(() => listener(early));
    }
    if (event === "close") {
      socket.off("close", holdClose);
      if (closedEarly !== undefined) queueMicrotask(() => listener(closedEarly));
    }
    return on(
      event,
      event !== "data"
        ? listener
        : (chunk: Buffer) => {
            if (watching) watch(chunk);
            if (!refused) listener(chunk);
          },
    );
  }) as Socket["on"];
  return socket;
}
