/**
 * npm's postinstall: repairs a bug of postgres 3.4.9 in node_modules until a release fixes it
 * (decision 79; upstream: porsager/postgres#1209, #1215, and LanternOps/breeze#3225 for the diagnosis).
 *
 * postgres.js holds a small write back for one tick (setImmediate) and knows a write is pending by
 * its timer. When the connection closes first, closed() and terminate() cancel the timer but keep
 * it, and keep the held bytes: that connection never writes again, so each later connect ends in
 * CONNECT_TIMEOUT. A Postgres that went away for a moment (a restart, the embedded cluster started
 * again by a color) left a color's pools dead for good. The repair forgets the timer and the bytes.
 *
 * Plain node, no dependencies: it runs before anything else is known to work. Each file must hold
 * the exact text it repairs, or already the repair; anything else fails the install, loudly.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = join(root, "node_modules", "postgres");
const VERSION = "3.4.9";
const FILES = ["src/connection.js", "cjs/src/connection.js", "cf/src/connection.js"];
const BROKEN = "    clearImmediate(nextWriteTimer)\n";
const REPAIRED =
  "    clearImmediate(nextWriteTimer)\n    nextWriteTimer = chunk = null // axe-appliance: build/patch-dependencies.mjs\n";

let version;
try {
  version = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version;
} catch {
  process.exit(0); // not installed (a partial install): nothing to repair
}
if (version !== VERSION) {
  console.error(
    `patch-dependencies: postgres is ${version}, not ${VERSION}: check whether it still needs the repair, then update this script`,
  );
  process.exit(1);
}
for (const file of FILES) {
  const path = join(pkg, file);
  const text = readFileSync(path, "utf8");
  if (text.includes(REPAIRED)) continue;
  const count = text.split(BROKEN).length - 1;
  if (count !== 2) {
    console.error(
      `patch-dependencies: ${path} holds ${count} teardowns of the write timer, expected 2 (closed and terminate)`,
    );
    process.exit(1);
  }
  writeFileSync(path, text.replaceAll(BROKEN, REPAIRED));
}
