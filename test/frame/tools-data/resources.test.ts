import { afterEach, describe, expect, test } from "bun:test";
import { waitFor } from "../../helpers/wait.ts";
import { call, type DataFrame, PEOPLE, startDataFrame } from "./harness.ts";

let running: DataFrame | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

describe("collection schemas as MCP resources", () => {
  test("list and read the caller's entity's collections only; lists and reads are audited", async () => {
    running = await startDataFrame();
    await call(await running.client("labs", "admin"), "define_collection", {
      name: "secrets",
      fields: { code: { type: "string" } },
    });
    const admin = await running.client("axe", "admin");
    await call(admin, "define_collection", PEOPLE);
    const reader = await running.client("axe", "reader");
    const { resources } = await reader.listResources();
    expect(resources.map((r) => [r.uri, r.mimeType])).toEqual([["frame://collections/people", "application/json"]]);
    const read = await reader.readResource({ uri: "frame://collections/people" });
    const body = JSON.parse((read.contents[0] as { text: string }).text);
    expect(body.fields.email).toMatchObject({ type: "string", pii: true });
    await expect(reader.readResource({ uri: "frame://collections/secrets" })).rejects.toThrow(
      /no collection named "secrets"/,
    );
    await expect(reader.readResource({ uri: "file:///etc/passwd" })).rejects.toThrow(/unknown resource/);
    // Listing reads the collections' names and descriptions, as list_collections does: audited like it.
    await waitFor("a resources/list and three resources/read audit rows", async () => {
      const [row] = await running!.db
        .sql`select count(*)::int as n from entity_axe.audit_log where tool like 'resources/%'`;
      return row!.n >= 4;
    });
    const rows = await running.db
      .sql`select tool, outcome from entity_axe.audit_log where tool like 'resources/%' order by seq`;
    expect(rows.map((r) => [r.tool, r.outcome])).toEqual([
      ["resources/list", "ok"],
      ["resources/read", "ok"],
      ["resources/read", "error"],
      ["resources/read", "error"],
    ]);
  });
});

describe("a resource request that fails inside frame (review 4)", () => {
  test("answers as a tool call does: a bug with the request id, never the database's own words", async () => {
    running = await startDataFrame();
    const admin = await running.client("axe", "admin");
    await call(admin, "define_collection", PEOPLE);
    const [entity] = await running.db.sql`select role_name from meta.entities where name = 'axe'`;
    // The entity's role loses its read of collections (an operator's mistake, a half-made migration).
    await running.db.sql`revoke select on entity_axe.collections from ${running.db.sql(entity!.role_name)}`;
    const tool = await call(admin, "list_collections");
    expect(tool.text).toMatch(/failed inside frame \(request [^)]+\); this is a bug/);
    for (const attempt of [
      () => admin.listResources(),
      () => admin.readResource({ uri: "frame://collections/people" }),
    ]) {
      const message = await attempt().then(
        () => "answered",
        (error: Error) => error.message,
      );
      expect(message).toMatch(/failed inside frame \(request [^)]+\); this is a bug/);
      expect(message).not.toMatch(/permission denied|collections/);
    }
  });
});
