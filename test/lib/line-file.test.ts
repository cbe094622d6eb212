import { describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { appendLine, lastLine, readLines } from "../../src/lib/line-file.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("line files", () => {
  test("appends whole lines; a line torn by a crash is skipped and the next append starts on a fresh line", () => {
    const file = join(tempDir("axe-lines"), "state", "anchors.jsonl");
    expect(readLines(file)).toEqual([]);
    expect(lastLine(file)).toBeUndefined();
    appendLine(file, "one", { mode: 0o600 });
    appendLine(file, "two", { mode: 0o600 });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    appendFileSync(file, "thr"); // power lost in the middle of a write
    expect(readLines(file)).toEqual([
      { line: "one", number: 1 },
      { line: "two", number: 2 },
    ]);
    expect(lastLine(file)).toBe("two");
    appendLine(file, "four", { mode: 0o600 });
    expect(readFileSync(file, "utf8")).toBe("one\ntwo\nthr\nfour\n");
    expect(lastLine(file)).toBe("four");
    expect(() => appendLine(file, "a\nb", { mode: 0o600 })).toThrow(/newline/);
  });

  test("lastLine reads only the end of a long file, and never returns a cut line", () => {
    const file = join(tempDir("axe-lines"), "long.jsonl");
    for (let i = 0; i < 2000; i++) appendFileSync(file, `${"x".repeat(100)} ${i}\n`);
    expect(lastLine(file, 1000)).toBe(`${"x".repeat(100)} 1999`);
    expect(lastLine(file, 50)).toBeUndefined(); // the window holds no whole line
  });
});
