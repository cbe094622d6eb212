/** The proxy is a proxy: nothing in src/proxy imports the modes above it (status, backup, deploy, services, frame, db). */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const PROXY = join(import.meta.dir, "..", "..", "src", "proxy");
const ABOVE = /from\s+["']\.\.\/(status|backup|deploy|services|frame|db|doctor|cli)\//;

test("src/proxy imports nothing from status, backup, deploy, services, frame, db, doctor or cli", () => {
  const offenders = readdirSync(PROXY)
    .filter((file) => file.endsWith(".ts"))
    .flatMap((file) =>
      readFileSync(join(PROXY, file), "utf8")
        .split("\n")
        .filter((line) => ABOVE.test(line) || /import\(["']\.\.\/(status|backup)\//.test(line))
        .map((line) => `${file}: ${line.trim()}`),
    );
  expect(offenders).toEqual([]);
});
