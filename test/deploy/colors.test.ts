import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  colorsFile,
  currentEnvFile,
  currentLink,
  forgetColor,
  pointColor,
  readColors,
} from "../../src/deploy/colors.ts";
import { DeployError } from "../../src/lib/errors.ts";
import { tempDir } from "../helpers/tmp.ts";

function thrown(fn: () => unknown): DeployError {
  try {
    fn();
  } catch (error) {
    return error as DeployError;
  }
  throw new Error("expected an error");
}

describe("which release each color runs", () => {
  test("pointColor moves the link, the env file and colors.json together, and returns what was before", () => {
    const data = tempDir("axe-data");
    expect(pointColor(data, "green", "1.2.3")).toEqual({});
    const before = pointColor(data, "green", "1.2.4");
    expect(before.green?.version).toBe("1.2.3");
    expect(readlinkSync(currentLink(data, "green"))).toBe(join("..", "releases", "1.2.4"));
    expect(readFileSync(currentEnvFile(data, "green"), "utf8")).toBe("AXE_RELEASE=1.2.4\n");
    expect(readColors(data).green?.version).toBe("1.2.4");
    expect(readColors(data).blue).toBeUndefined();
  });

  test("forgetColor removes all three, so a unit has nothing stale to run", () => {
    const data = tempDir("axe-data");
    pointColor(data, "blue", "1.0.0");
    pointColor(data, "green", "1.0.1");
    forgetColor(data, "green");
    expect(readColors(data)).toEqual({ blue: expect.objectContaining({ version: "1.0.0" }) });
    expect(existsSync(currentLink(data, "green"))).toBe(false);
    expect(existsSync(currentEnvFile(data, "green"))).toBe(false);
    expect(readlinkSync(currentLink(data, "blue"))).toBe(join("..", "releases", "1.0.0"));
  });

  test("a corrupt colors.json is an error naming the file, never a quiet 'no release anywhere'", () => {
    const data = tempDir("axe-data");
    pointColor(data, "blue", "1.0.0");
    writeFileSync(colorsFile(data), '{"blue": {"version": "1.0.0", "since": ');
    const torn = thrown(() => readColors(data));
    expect(torn).toBeInstanceOf(DeployError);
    expect(torn.code).toBe("COLORS_INVALID");
    expect(torn.message).toBe(`${colorsFile(data)}: not JSON`);
    expect(torn.hint).toContain(`ls -l ${join(data, "current")}`);
    writeFileSync(colorsFile(data), JSON.stringify({ blue: { release: "1.0.0" } }));
    const shape = thrown(() => readColors(data));
    expect(shape.code).toBe("COLORS_INVALID");
    expect(shape.message).toStartWith(`${colorsFile(data)}: blue.version: `);
    expect(() => pointColor(data, "green", "1.0.1")).toThrow(DeployError); // nothing is pointed on a guess
    expect(existsSync(currentLink(data, "green"))).toBe(false);
  });
});
