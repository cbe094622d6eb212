/** The parser on the security boundary is the pinned llhttp build, loaded from the path we check, in strict mode. */
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ERROR, HttpParser, LLHTTP_SOURCE, REQUEST } from "../../src/proxy/llhttp.ts";

const ROOT = join(import.meta.dir, "..", "..");

test("undici is pinned to the exact version whose llhttp WASM build the proxy checks", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  expect(pkg.dependencies[LLHTTP_SOURCE.package]).toBe(LLHTTP_SOURCE.version);
  const installed = JSON.parse(readFileSync(join(ROOT, "node_modules", "undici", "package.json"), "utf8")) as {
    version: string;
  };
  expect(installed.version).toBe(LLHTTP_SOURCE.version);
  const resolved = require.resolve(`${LLHTTP_SOURCE.package}/${LLHTTP_SOURCE.file}`);
  expect(resolved).toBe(join(ROOT, "node_modules", "undici", LLHTTP_SOURCE.file));
  const bytes = require(resolved) as Uint8Array;
  expect(createHash("sha256").update(bytes).digest("hex")).toBe(LLHTTP_SOURCE.sha256);
  expect(readFileSync(join(ROOT, "src", "proxy", "llhttp.ts"), "utf8")).toContain(
    `require("${LLHTTP_SOURCE.package}/${LLHTTP_SOURCE.file}")`,
  );
});

test("strict mode: no lenient flag is set anywhere, and lenient shapes are refused", () => {
  const sources = ["llhttp.ts", "client-connection.ts", "upstream-connection.ts"].map((f) =>
    readFileSync(join(ROOT, "src", "proxy", f), "utf8"),
  );
  for (const source of sources) expect(source).not.toContain("set_lenient");
  class Probe extends HttpParser {
    onHeaderField = () => 0;
    onHeaderValue = () => 0;
    onHeadersComplete = () => 0;
    onBody = () => 0;
    onMessageComplete = () => ERROR.PAUSED;
  }
  const parse = (text: string) => {
    const parser = new Probe(REQUEST);
    const errno = parser.execute(Buffer.from(text, "latin1"));
    parser.free();
    return errno;
  };
  expect(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).toBe(ERROR.PAUSED);
  for (const bad of [
    "GET / HTTP/1.1\nHost: x\n\n", // bare LF (lenient optional_cr_before_lf)
    "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", // obs-fold (lenient headers)
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", // lenient chunked_length
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n", // spaces_after_chunk_size
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxx0\r\n\r\n", // optional_crlf_after_chunk
  ])
    expect([ERROR.OK, ERROR.PAUSED]).not.toContain(parse(bad));
});
