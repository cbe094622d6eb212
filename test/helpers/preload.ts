/** Loaded before every test file (bunfig.toml): stop what the run started, remove temp dirs. */
import { afterAll } from "bun:test";
import { stopTestCluster } from "./postgres.ts";
import { removeTempDirs } from "./tmp.ts";

afterAll(async () => {
  await stopTestCluster();
  removeTempDirs();
});
