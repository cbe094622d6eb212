/**
 * Ports for tests. A test never assumes a fixed port is free (3700-3714 are the appliance's
 * defaults, and anyone's on a shared machine): it listens on port 0 and reads the port back, or
 * takes one from `freePort()` for a child process that needs a number up front.
 * `AXE_TEST_HOLD_PORTS=3700-3714` (set by .ci/run) makes the run itself hold those ports, so a
 * test that would bind one, or expects nothing to answer there, fails every time instead of once in a while.
 */
import { createServer } from "node:net";

/** A port nothing listened on a moment ago, for a child process that must be told its port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Listens on 127.0.0.1 at each port of "A-B,C" and closes every connection at once; returns how to let go. */
export function holdPorts(spec: string): () => void {
  const held: Array<{ stop(): void }> = [];
  for (const part of spec.split(",").filter(Boolean)) {
    const [first, last = first] = part.split("-").map(Number);
    for (let port = first!; port <= last!; port++) {
      try {
        held.push(
          Bun.listen({ hostname: "127.0.0.1", port, socket: { open: (socket) => void socket.end(), data() {} } }),
        );
      } catch {
        // already taken by another process: just as unavailable to the tests
      }
    }
  }
  return () => {
    for (const listener of held.splice(0)) listener.stop();
  };
}
