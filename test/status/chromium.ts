/**
 * Headless Chromium (Debian's `chromium` package) for the status page test: a screenshot and the
 * DOM after rendering. Missing Chromium is a failure with the fix, never a skipped test.
 */
import { join } from "node:path";
import { tempDir } from "../helpers/tmp.ts";

export function chromiumBinary(): string {
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    const path = Bun.which(name);
    if (path) return path;
  }
  throw new Error(
    "headless Chromium is needed for the status page test: apt-get install chromium (bash .ci/run installs it)",
  );
}

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--hide-scrollbars",
  "--window-size=1200,800",
];

async function run(args: string[]): Promise<string> {
  const child = Bun.spawn([chromiumBinary(), ...FLAGS, `--user-data-dir=${tempDir("axe-chromium")}`, ...args], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`chromium exited ${code}: ${stderr.slice(-2000)}`);
  return stdout;
}

/** Renders `url` at 1200x800 into a PNG file and returns its path. */
export async function screenshot(url: string, file = join(tempDir("axe-shot"), "status-page.png")): Promise<string> {
  await run([`--screenshot=${file}`, url]);
  return file;
}

/** The DOM after Chromium has loaded and rendered `url`. */
export function renderedDom(url: string): Promise<string> {
  return run(["--dump-dom", url]);
}

/** Width and height from a PNG's IHDR chunk. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!signature.every((b, i) => bytes[i] === b)) throw new Error("not a PNG");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}
