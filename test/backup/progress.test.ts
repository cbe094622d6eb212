import { describe, expect, test } from "bun:test";
import { createProgress } from "../../src/backup/progress.ts";

describe("progress", () => {
  test("on a terminal: a bar redrawn in place from restic's JSON status lines, ended with a newline", () => {
    let out = "";
    const p = createProgress("config, state", { tty: true, write: (s) => (out += s) });
    p.line(JSON.stringify({ message_type: "status", percent_done: 0.5, bytes_done: 2048, total_bytes: 4096 }));
    p.line("not json");
    p.line(JSON.stringify({ message_type: "summary", snapshot_id: "abcd1234" }));
    p.done();
    expect(out).toBe(`\rconfig, state  [${"#".repeat(15)}${".".repeat(15)}] 50% 2.0 KiB   \n`);
  });

  test("a stream of unknown length shows bytes, not a made-up percentage; nothing is drawn when restic said nothing", () => {
    let out = "";
    const p = createProgress("database dump", { tty: true, write: (s) => (out += s) });
    p.line(JSON.stringify({ message_type: "status", percent_done: 0, bytes_done: 3 * 1024 * 1024 }));
    expect(out).toBe("\rdatabase dump  [streaming] 3.0 MiB   ");
    let quiet = "";
    createProgress("x", { tty: true, write: (s) => (quiet += s) }).done();
    expect(quiet).toBe("");
  });
});
