/**
 * What another local account could run on the database's port while Postgres is down: a raw TCP
 * server on a free loopback port that answers the first thing it gets (a startup message) with
 * `reply` (after refusing TLS, as a plain server does), and records every byte it is sent.
 */
export function fakePostgres(reply: Buffer) {
  let received = Buffer.alloc(0);
  let replied: "no" | "refused-tls" | "replied" = "no";
  const listener = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket, data) {
        const first = received.length === 0 || replied === "refused-tls";
        received = Buffer.concat([received, data]);
        if (!first) return;
        // libpq asks for TLS (or GSS encryption) first: say no, as a plain server does, and wait for the startup
        const code = data.length === 8 ? data.readUInt32BE(4) : 0;
        if (code === 80877103 || code === 80877104) {
          replied = "refused-tls";
          socket.write("N");
          return;
        }
        replied = "replied";
        socket.write(reply);
      },
    },
  });
  return { port: listener.port, received: () => received.toString("latin1"), stop: () => listener.stop(true) };
}

/** A backend message: its type, a length, the parts. */
export function pgMessage(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** An authentication request ('R') with its code: 0 ok, 3 clear text, 5 MD5, 10-12 SASL. */
export function pgAuth(code: number, ...rest: Buffer[]): Buffer {
  const int32 = Buffer.alloc(4);
  int32.writeUInt32BE(code);
  return pgMessage("R", int32, ...rest);
}
