import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { tempDir } from "../helpers/tmp.ts";
import { startWorker, type Worker } from "./fixtures/workers.ts";

const SECRET_WORKER = join(import.meta.dir, "fixtures", "secret-worker.ts");
const workers: Worker[] = [];
afterAll(async () => {
  for (const worker of workers.splice(0)) await worker.stop();
});

describe("create-once secret files", () => {
  test("first starts at the same moment agree on one key: 4 processes, 30 rounds", async () => {
    const dir = tempDir("axe-secret-race");
    const racers = Array.from({ length: 4 }, () => startWorker(SECRET_WORKER));
    workers.push(...racers);
    const split: number[] = [];
    for (let round = 0; round < 30; round++) {
      const path = join(dir, `round-${round}`, "token.key");
      const at = Date.now() + 30;
      for (const racer of racers) racer.send(`go ${path} ${at}`);
      const keys = await Promise.all(racers.map((racer) => racer.next()));
      if (new Set(keys).size !== 1) split.push(round);
    }
    expect(split).toEqual([]);
  });
});
