/**
 * A stand-in long-running process for backend tests (not one of our components): installs its
 * SIGTERM handler, then writes its argv, a chosen env var and pid to the file named by
 * FIXTURE_OUT, and waits. With FIXTURE_IGNORE_TERM=1 it ignores SIGTERM (to prove the backend
 * escalates to SIGKILL); with FIXTURE_EXIT_AFTER_MS it dies on its own (to exercise the supervisor),
 * writing FIXTURE_SAY to stderr first.
 */
import { appendFileSync } from "node:fs";

// handlers first: a test that reads the announcement may signal at once
if (process.env.FIXTURE_IGNORE_TERM === "1") process.on("SIGTERM", () => {});
else process.on("SIGTERM", () => process.exit(0));
const out = process.env.FIXTURE_OUT!;
appendFileSync(
  out,
  `${JSON.stringify({
    pid: process.pid,
    argv: process.argv.slice(2),
    release: process.env.AXE_RELEASE,
    config: process.env.AXE_CONFIG_DIR,
  })}\n`,
);
const exitAfter = Number(process.env.FIXTURE_EXIT_AFTER_MS ?? 0);
if (exitAfter > 0)
  setTimeout(() => {
    if (process.env.FIXTURE_SAY) process.stderr.write(`${process.env.FIXTURE_SAY}\n`);
    process.exit(3);
  }, exitAfter);
setInterval(() => {}, 60_000);
