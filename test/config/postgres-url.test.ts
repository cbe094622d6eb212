import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.ts";
import { parsePostgresUrl } from "../../src/config/postgres-url.ts";
import { ConfigError } from "../../src/lib/errors.ts";
import { makeConfigDir } from "../helpers/config.ts";

describe("postgres URLs", () => {
  test("one parser with one set of defaults", () => {
    expect(parsePostgresUrl("postgres://frame@db.example:3700/frame")).toEqual({
      host: "db.example",
      port: 3700,
      user: "frame",
      database: "frame",
      hasPassword: false,
    });
    expect(parsePostgresUrl("postgresql://")).toEqual({
      host: "127.0.0.1",
      port: 5432,
      user: "postgres",
      database: "",
      hasPassword: false,
    });
    expect(parsePostgresUrl("postgres://a%40b@%2Fvar%2Frun%2Fpostgresql/x")).toMatchObject({
      host: "/var/run/postgresql",
      user: "a@b",
    });
    expect(parsePostgresUrl("postgres://frame:secret@h/frame")?.hasPassword).toBe(true);
    expect(parsePostgresUrl("mysql://h/x")).toBeUndefined();
    expect(parsePostgresUrl("not a url")).toBeUndefined();
  });

  test("appliance.yaml refuses a URL that is not postgres or that holds a password, naming the key", () => {
    for (const [url, says] of [
      ["http://db/frame", "expected a postgres:// URL"],
      ["postgres://frame:pw@db/frame", "the URL holds a password"],
    ] as const) {
      const dir = makeConfigDir();
      writeFileSync(join(dir, "appliance.yaml"), stringify({ customer: "axe", database: { url } }));
      let error: unknown;
      try {
        loadConfig({ dir });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain("database.url");
      expect((error as Error).message).toContain(says);
    }
  });
});
