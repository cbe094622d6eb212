import { describe, expect, test } from "bun:test";
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { createFileOnce, createFileOnceFrom, writeFileAtomic } from "../../src/lib/atomic-write.ts";
import { writeSecretFile } from "../../src/lib/secret-file.ts";
import { tempDir } from "../helpers/tmp.ts";
import { startWorker } from "./fixtures/workers.ts";

const READER = join(import.meta.dir, "fixtures", "torn-reader.ts");
const mode = (path: string) => statSync(path).mode & 0o777;

describe("atomic file write", () => {
  test("a reader in another process sees the old content or the new, never a torn file", async () => {
    const dir = tempDir("axe-atomic");
    const file = join(dir, "state.json");
    const stop = join(dir, "stop");
    const size = 1024 * 1024;
    writeFileAtomic(file, "A".repeat(size), { mode: 0o644 });
    const reader = startWorker(READER, [file, stop, `${size}:A`, `${size}:B`]);
    expect(await reader.next()).toBe("ready");
    for (let i = 0; i < 300; i++) writeFileAtomic(file, (i % 2 ? "A" : "B").repeat(size), { mode: 0o644 });
    writeFileSync(stop, "");
    const [reads, torn] = (await reader.next()).match(/\d+/g)!.map(Number);
    await reader.stop();
    expect(reads).toBeGreaterThan(0);
    expect(torn).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["state.json", "stop"]); // no temp file left behind
  });

  test("the caller's mode is the file's mode whatever the umask, also over a wider existing file", () => {
    const dir = tempDir("axe-atomic");
    const previous = process.umask(0o077);
    try {
      writeFileAtomic(join(dir, "unit.service"), "x", { mode: 0o644 });
      expect(mode(join(dir, "unit.service"))).toBe(0o644);
    } finally {
      process.umask(previous);
    }
    writeFileSync(join(dir, "secret"), "old", { mode: 0o666 });
    writeFileAtomic(join(dir, "secret"), "new", { mode: 0o600 });
    expect(mode(join(dir, "secret"))).toBe(0o600);
    expect(readFileSync(join(dir, "secret"), "utf8")).toBe("new");
  });

  test("a symlink at the path is replaced, never written through", () => {
    const dir = tempDir("axe-atomic");
    const victim = join(dir, "victim");
    writeFileSync(victim, "untouched");
    symlinkSync(victim, join(dir, "colors.json"));
    writeFileAtomic(join(dir, "colors.json"), "{}", { mode: 0o644 });
    expect(lstatSync(join(dir, "colors.json")).isSymbolicLink()).toBe(false);
    expect(readFileSync(victim, "utf8")).toBe("untouched");
  });

  test("a symlink planted where the old code put its temp file cannot steer a secret elsewhere", () => {
    const dir = tempDir("axe-atomic");
    const victim = join(dir, "victim");
    writeFileSync(victim, "untouched", { mode: 0o644 });
    const secret = join(dir, "secrets", "token.key");
    mkdirSync(join(dir, "secrets"));
    symlinkSync(victim, `${secret}.tmp-${process.pid}`); // the name every earlier copy used
    writeSecretFile(secret, "s3cret\n");
    expect(readFileSync(victim, "utf8")).toBe("untouched");
    expect(mode(victim)).toBe(0o644);
    expect(readFileSync(secret, "utf8")).toBe("s3cret\n");
    expect(mode(secret)).toBe(0o600);
    expect(readlinkSync(`${secret}.tmp-${process.pid}`)).toBe(victim);
  });

  test("a failed write leaves the old file and no temp file", () => {
    const dir = tempDir("axe-atomic");
    mkdirSync(join(dir, "busy"));
    writeFileSync(join(dir, "busy", "inside"), "");
    expect(() => writeFileAtomic(join(dir, "busy"), "x", { mode: 0o644 })).toThrow();
    expect(readdirSync(dir)).toEqual(["busy"]);
  });

  test("createFileOnce publishes once: a second call writes nothing and says so", () => {
    const dir = tempDir("axe-atomic");
    const file = join(dir, "made", "once");
    expect(createFileOnce(file, "first", { mode: 0o600 })).toBe(true);
    expect(createFileOnce(file, "second", { mode: 0o600 })).toBe(false);
    expect(readFileSync(file, "utf8")).toBe("first");
    expect(readdirSync(join(dir, "made"))).toEqual(["once"]);
    expect(mode(join(dir, "made"))).toBe(0o700);
  });

  test("createFileOnceFrom publishes what was appended piece by piece, once; a failing producer publishes nothing", async () => {
    const dir = tempDir("axe-atomic");
    const file = join(dir, "archive.jsonl");
    const pieces = async (append: (chunk: string) => void) => {
      for (let i = 0; i < 3; i++) {
        await Bun.sleep(1);
        append(`line ${i}\n`);
      }
    };
    const failing = join(dir, "failed.jsonl");
    await expect(
      createFileOnceFrom(failing, { mode: 0o600 }, async (append) => {
        append("half");
        throw new Error("the database went away");
      }),
    ).rejects.toThrow("the database went away");
    expect(readdirSync(dir)).toEqual([]);
    expect(await createFileOnceFrom(file, { mode: 0o600 }, pieces)).toBe(true);
    expect(await createFileOnceFrom(file, { mode: 0o600 }, async (append) => append("other"))).toBe(false);
    expect(readFileSync(file, "utf8")).toBe("line 0\nline 1\nline 2\n");
    expect(mode(file)).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["archive.jsonl"]);
  });
});
