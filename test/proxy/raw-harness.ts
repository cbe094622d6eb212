/**
 * Raw TCP on both sides of the proxy: an upstream that records exactly the bytes it receives and
 * answers with bytes a test writes, and a caller that sends raw bytes and reads the raw answer.
 * Health probes (GET /healthz) are answered and left out of the record.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { WAIT_MS } from "../helpers/wait.ts";

export interface RawRequest {
  /** The head as received, up to and including the blank line. */
  head: string;
  /** The body as received (framing included for a chunked one). */
  body: string;
  path: string;
  socket: Socket;
  /** Index of the connection it came on (0 = the first connection a proxied request used). */
  connection: number;
}

export interface RawUpstream {
  url: string;
  /** Every byte of every proxied connection, in arrival order. */
  received(): string;
  requests: RawRequest[];
  /** Connections that carried a proxied request. */
  connections: number;
  close(): void;
}

const HEALTHY = 'HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{"status":"ok"}';

/** `answer` writes the response for each complete request (it may write nothing, or close). */
export async function rawUpstream(answer: (request: RawRequest) => void): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const state: RawUpstream = {
    url: "",
    requests: [],
    connections: 0,
    received: () => log.join(""),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
  const log: string[] = [];
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let buffer = "";
    let index = -1;
    socket.on("data", (data) => {
      const text = data.toString("latin1");
      buffer += text;
      if (index >= 0) log.push(text);
      for (;;) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buffer.slice(0, end + 4);
        if (head.startsWith("GET /healthz")) {
          buffer = buffer.slice(end + 4);
          socket.write(HEALTHY);
          continue;
        }
        if (index < 0) {
          index = state.connections++;
          log.push(buffer);
        }
        const length = /\r\ncontent-length: *(\d+)/i.exec(head);
        let bodyEnd = end + 4;
        if (length) bodyEnd += Number(length[1]);
        else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
          const last = buffer.indexOf("\r\n0\r\n\r\n", end);
          const first = buffer.startsWith("0\r\n\r\n", end + 4) ? end + 4 : -1;
          if (first < 0 && last < 0) return;
          bodyEnd = first >= 0 ? first + 5 : last + 7;
        }
        if (buffer.length < bodyEnd) return;
        const request: RawRequest = {
          head,
          body: buffer.slice(end + 4, bodyEnd),
          path: head.split(" ")[1] ?? "",
          socket,
          connection: index,
        };
        buffer = buffer.slice(bodyEnd);
        state.requests.push(request);
        answer(request);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return state;
}

/**
 * Sends raw bytes; resolves with everything that came back once the server closes or `ms` pass.
 * The proxy closes after its answer in every exchange the tests make, so the bound only ends a test
 * that already failed: generous, because an answer a loaded machine gives late is no failure.
 */
export function rawExchange(port: number, data: string | string[], ms = WAIT_MS): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let out = "";
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on("data", (d) => (out += d.toString("latin1")));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on("error", () => undefined);
    for (const piece of Array.isArray(data) ? data : [data]) socket.write(Buffer.from(piece, "latin1"));
  });
}

/** Status codes of every response in a raw answer, in order. */
export function statuses(answer: string): number[] {
  return [...answer.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
}
