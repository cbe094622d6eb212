import { afterEach, describe, expect, test } from "bun:test";
import { issueServiceToken } from "../../../src/frame/auth/service-tokens.ts";
import { KeyError } from "../../../src/frame/crypto/errors.ts";
import { newMasterKeyText } from "../../../src/frame/crypto/master-key.ts";
import { rotateMasterKey } from "../../../src/frame/crypto/rotate.ts";
import { startFrame } from "../../../src/frame/serve.ts";
import { masterKeyPath } from "../../../src/frame/store/open-data.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { writeSecretFile } from "../../../src/lib/secret-file.ts";
import { mcpClient } from "../harness.ts";
import { call, type DataFrame, PEOPLE, startDataFrame } from "./harness.ts";

let running: DataFrame | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

describe("keys rotate while serving", () => {
  test("the running server keeps answering, and a server started after the rotation decrypts everything", async () => {
    running = await startDataFrame();
    const admin = await running.client("axe", "admin");
    await call(admin, "define_collection", PEOPLE);
    const ids: string[] = [];
    for (const i of [1, 2, 3])
      ids.push(
        (
          await call(admin, "create_record", {
            collection: "people",
            values: { name: `P${i}`, email: `p${i}@axellc.com` },
          })
        ).data.id,
      );

    const rotation = await rotateMasterKey(running.db.sql, masterKeyPath(running.config));
    expect(rotation.rewrapped).toBeGreaterThanOrEqual(4); // two keys for each of axe and labs

    expect((await call(admin, "get_record", { id: ids[0] })).data.values.email).toBe("p1@axellc.com");
    const labs = await running.client("labs", "admin"); // labs' keys were never unwrapped before the rotation
    expect((await call(labs, "define_collection", PEOPLE)).isError).toBe(false);
    expect(
      (await call(labs, "create_record", { collection: "people", values: { name: "L", email: "l@axe-labs.dev" } }))
        .isError,
    ).toBe(false);

    await running.frame.stop();
    running.frame = await startFrame({
      config: running.config,
      color: "green",
      port: 0,
      logger: createLogger({ level: "error" }),
    });
    const { token } = await issueServiceToken(running.db.sql, running.config.paths.secrets, {
      customer: "axe",
      entity: "axe",
      role: "reader",
      name: "after",
      expiresInMs: 60_000,
    });
    const reader = await mcpClient(`${running.frame.url}/frame/mcp`, token);
    try {
      for (const [i, id] of ids.entries())
        expect((await call(reader, "get_record", { id })).data.values.email).toBe(`p${i + 1}@axellc.com`);
      const found = await call(reader, "search_records", { collection: "people", filters: { email: "P2@axellc.com" } });
      expect(found.data.records.map((r: any) => r.id)).toEqual([ids[1]]);
    } finally {
      await reader.close();
    }
  });

  test("a server started with the wrong master.key refuses to start, naming the key it needs", async () => {
    running = await startDataFrame();
    await running.frame.stop();
    writeSecretFile(masterKeyPath(running.config), newMasterKeyText());
    const attempt = startFrame({
      config: running.config,
      color: "green",
      port: 0,
      logger: createLogger({ level: "error" }),
    });
    await expect(attempt).rejects.toBeInstanceOf(KeyError);
    await expect(attempt).rejects.toThrow(
      /wrapped by master key [0-9a-f]{16}, but .*master\.key holds a different key/,
    );
    running.frame.stop = async () => {}; // never started again; close() still drops the database
  });
});
