/** The color proof's pieces: the key file, the proof itself, which colors must prove, and a binary's answer about itself. */
import { describe, expect, test } from "bun:test";
import { mkdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  colorKeyFile,
  colorMustProve,
  colorProof,
  loadColorKey,
  newChallenge,
  provesColor,
  RELEASE_ANSWER_FILE,
} from "../../src/lib/color-proof.ts";
import { parseVersionAnswer, versionJson } from "../../src/lib/version.ts";
import { versionLine } from "../../src/main.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("the color key and its proofs", () => {
  test("the key is made once, 0600, and every process reads the same one", () => {
    const secrets = tempDir("axe-secrets");
    const first = loadColorKey(secrets);
    expect(statSync(colorKeyFile(secrets)).mode & 0o777).toBe(0o600);
    expect(loadColorKey(secrets).equals(first)).toBe(true);
    expect(first.byteLength).toBe(32);
  });

  test("a key file that is not a key is refused, naming the file", () => {
    const secrets = tempDir("axe-secrets");
    writeFileSync(colorKeyFile(secrets), "not hex\n", { mode: 0o600 });
    expect(() => loadColorKey(secrets)).toThrow(`${colorKeyFile(secrets)}: not a color key`);
  });

  test("a proof holds only for its color, its challenge and its key", () => {
    const key = loadColorKey(tempDir("axe-secrets"));
    const other = loadColorKey(tempDir("axe-secrets"));
    const challenge = newChallenge();
    const proof = colorProof(key, "blue", challenge)!;
    expect(provesColor(key, "blue", challenge, proof)).toBe(true);
    expect(provesColor(key, "green", challenge, proof)).toBe(false);
    expect(provesColor(key, "blue", newChallenge(), proof)).toBe(false);
    expect(provesColor(other, "blue", challenge, proof)).toBe(false);
    expect(provesColor(key, "blue", challenge, null)).toBe(false);
    expect(provesColor(key, "blue", challenge, proof.toUpperCase())).toBe(false);
  });

  test("a challenge that is not 32-128 lower-case hex digits gets no proof", () => {
    const key = loadColorKey(tempDir("axe-secrets"));
    for (const bad of [null, "", "abc", "g".repeat(32), "A".repeat(32), "a".repeat(129), `${"a".repeat(32)}\r\n`])
      expect(colorProof(key, "blue", bad)).toBeUndefined();
    expect(colorProof(key, "blue", "a".repeat(32))).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("which colors must prove themselves", () => {
  function release(data: string, version: string, answer?: string): void {
    const dir = join(data, "releases", version);
    mkdirSync(dir, { recursive: true });
    if (answer !== undefined) writeFileSync(join(dir, RELEASE_ANSWER_FILE), answer);
  }
  function point(data: string, color: "blue" | "green", version: string): void {
    mkdirSync(join(data, "current"), { recursive: true });
    symlinkSync(join("..", "releases", version), join(data, "current", color));
  }

  test("by what the release's binary said when it was installed", () => {
    const data = tempDir("axe-data");
    release(data, "2.0.0", JSON.stringify({ version: "2.0.0", proves_color: true }));
    release(data, "1.0.0"); // from before proofs: no answer on file
    point(data, "blue", "2.0.0");
    point(data, "green", "1.0.0");
    expect(colorMustProve(data, "blue")).toBe(true);
    expect(colorMustProve(data, "green")).toBe(false);
  });

  test("an answer that says it proves nothing, or none at all on a fresh machine: as before", () => {
    const data = tempDir("axe-data");
    release(data, "1.5.0", JSON.stringify({ version: "1.5.0", proves_color: false }));
    point(data, "blue", "1.5.0");
    expect(colorMustProve(data, "blue")).toBe(false);
    expect(colorMustProve(tempDir("axe-data"), "green")).toBe(false);
  });

  test("a color with no release (or a dangling link) must prove itself when the other color's release does", () => {
    const data = tempDir("axe-data");
    release(data, "2.0.0", JSON.stringify({ proves_color: true }));
    point(data, "green", "2.0.0");
    expect(colorMustProve(data, "blue")).toBe(true);
    point(data, "blue", "gone"); // the link points at a release that was removed
    expect(colorMustProve(data, "blue")).toBe(true);
  });

  test("an answer on file that cannot be read as JSON counts as one that proves", () => {
    const data = tempDir("axe-data");
    release(data, "2.0.0", "{ torn");
    point(data, "blue", "2.0.0");
    expect(colorMustProve(data, "blue")).toBe(true);
  });
});

describe("what a binary says of itself", () => {
  test("--version --json is read back as this build, one that proves its color", () => {
    const answer = parseVersionAnswer(versionJson());
    expect(answer).toMatchObject({ provesColor: true, commit: "source" });
    expect(answer!.target).toBe(`${process.platform}-${process.arch}`);
  });

  test("a binary from before ignores --json and prints its line: read as one that proves nothing", () => {
    expect(
      parseVersionAnswer(
        "axe-appliance 0.1.0 (commit 1a2b3c4d5e6f, bun-darwin-arm64, built 2026-11-20T10:00:00.000Z)\n",
      ),
    ).toEqual({
      version: "0.1.0",
      commit: "1a2b3c4d5e6f",
      target: "darwin-arm64",
      builtAt: "2026-11-20T10:00:00.000Z",
      provesColor: false,
    });
    expect(parseVersionAnswer(versionLine())).toMatchObject({ provesColor: false, commit: "source" });
  });

  test("anything else is no answer", () => {
    for (const text of ["", "hello", "{}", '{"version": 1}', "axe-appliance"])
      expect(parseVersionAnswer(text)).toBeUndefined();
  });
});
