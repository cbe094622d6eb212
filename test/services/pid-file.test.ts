import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { makeConfigDir } from "../helpers/config.ts";

const PLANT = join(import.meta.dir, "fixtures-stop-planted.ts");

describe("child backend PID files are read through a schema", () => {
  test("a PID file naming PID 0 never makes stop signal the stopper's own process group", async () => {
    const dir = makeConfigDir();
    for (const planted of [
      { pid: 0, release: "1.0.0", startedAt: "2026-01-01T00:00:00Z" },
      { pid: "1234", release: "1.0.0", startedAt: "2026-01-01T00:00:00Z" },
      "not json",
    ]) {
      // detached: its own process group, so what it signals by mistake is only itself
      const child = Bun.spawn([process.execPath, PLANT, dir, JSON.stringify(planted)], {
        detached: true,
        stdout: "pipe",
        stderr: "pipe",
      });
      const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
      await child.exited;
      expect({ planted, signal: child.signalCode, out, err }).toEqual({
        planted,
        signal: null,
        out: "survived\n",
        err: "",
      });
    }
  }, 60_000);
});
