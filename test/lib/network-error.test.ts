import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { networkFailure } from "../../src/lib/network-error.ts";
import { freePort } from "../helpers/ports.ts";
import { tempDir } from "../helpers/tmp.ts";

/** What a real fetch that fails throws. */
async function failure(url: string, init: RequestInit & { unix?: string } = {}): Promise<unknown> {
  return fetch(url, init).then(
    () => {
      throw new Error(`${url} answered`);
    },
    (error: unknown) => error,
  );
}

describe("networkFailure", () => {
  test("real fetch failures read as the system's code and a plain reason, without Bun's advice to developers", async () => {
    const refused = networkFailure(await failure(`http://127.0.0.1:${await freePort()}/`));
    expect(refused).toBe("ECONNREFUSED (nothing listens there)");

    const missing = networkFailure(
      await failure("http://localhost/x", { unix: join(tempDir("axe-net"), "gone.sock") }),
    );
    expect(missing).toBe("ENOENT (no such socket)");

    const closer = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => void s.end(), data() {} } });
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      expect(networkFailure(await failure(`http://127.0.0.1:${closer.port}/`))).toBe(
        "ECONNRESET (the connection closed before an answer)",
      );
      const timedOut = await failure(`http://127.0.0.1:${silent.port}/`, { signal: AbortSignal.timeout(50) });
      expect(networkFailure(timedOut)).toBe("timeout (no answer in time)");
    } finally {
      closer.stop(true);
      silent.stop(true);
    }
    for (const text of [refused, missing]) expect(text).not.toMatch(/computer|typo|verbose/);
  });

  test("anything else keeps its own first line", () => {
    expect(networkFailure(new Error("certificate has expired\nat line 2"))).toBe("certificate has expired");
    expect(networkFailure("a string")).toBe("a string");
  });
});
