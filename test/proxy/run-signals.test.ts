/**
 * `proxy run` keeps handling stop signals while it drains: a second Ctrl-C, or timeout(1)
 * signalling the process and then its group, must not kill it halfway through an answer.
 */
import { afterAll, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { eventually, proxyConfigDir, spawnProxy, startUpstream, stopAll } from "./harness.ts";

afterAll(stopAll);

/** Resolves with the socket once connected, or with the error code when the connection is refused. */
function dial(port: number): Promise<Socket | string> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => resolve(socket));
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

test("SIGTERM, then SIGTERM and SIGINT again during the drain: the request in flight is answered and the proxy exits 0", async () => {
  const [blue, green] = await Promise.all([startUpstream("blue"), startUpstream("green")]);
  const proxy = await spawnProxy(proxyConfigDir(blue, green, { drain_timeout_ms: 60_000 }));
  const port = Number(new URL(proxy.url).port);
  const { live } = await proxyStatus(proxy.socket);

  // A request whose body we hold back: in flight for as long as the test wants, no clock involved.
  const client = await dial(port);
  if (typeof client === "string") throw new Error(`cannot reach the proxy: ${client}`);
  let answer = "";
  client.on("data", (chunk) => (answer += chunk.toString("latin1")));
  const ended = new Promise<void>((resolve) => client.once("close", () => resolve()));
  client.write("POST /frame/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nhello");
  await eventually(async () => (await proxyStatus(proxy.socket)).colors[live].inflight === 1);

  proxy.process.kill("SIGTERM");
  await eventually(async () => {
    const probe = await dial(port);
    if (typeof probe === "string") return probe === "ECONNREFUSED"; // draining: the listener is closed
    probe.destroy();
    return false;
  });
  proxy.process.kill("SIGTERM");
  proxy.process.kill("SIGINT");
  await eventually(() => proxy.stderr().split("still stopping").length - 1 === 2);
  expect(proxy.process.exitCode).toBeNull();

  client.write("world");
  await ended;
  const [head, body] = answer.split("\r\n\r\n", 2) as [string, string];
  expect(head.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
  expect(JSON.parse(body)).toMatchObject({ color: live, bodyText: "helloworld" });
  expect(await proxy.process.exited).toBe(0);
  expect(proxy.stderr()).toContain('"proxy stopped"');
}, 60_000);
