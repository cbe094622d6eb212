/**
 * Property: every tools/call, whatever its arguments, ends in a result or a tool error with a
 * message, or a JSON-RPC -32602 with one line: never -32603, never "failed inside frame", never an
 * HTTP 5xx. Arguments come from each tool's own inputSchema (tools/list) through arbitraries.ts,
 * against a real serve and Postgres, with admin, writer and reader tokens. Afterwards every
 * collection still lists, searches, gets and shows history, and every audit chain verifies.
 *
 * CI runs a fixed seed and a bounded number of runs; a longer hunt:
 *   AXE_FUZZ_RUNS=2000 AXE_FUZZ_SEED=$RANDOM bun test --timeout 0 test/frame/fuzz/tools-fuzz.test.ts
 * A case this finds becomes an ordinary test in test/frame/tools-data/input-boundary.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { verifyAudit } from "../../../src/frame/store/audit-verify.ts";
import { rpc } from "../harness.ts";
import { call, type DataFrame, PEOPLE, startDataFrame } from "../tools-data/harness.ts";
import { argumentsFor, type FuzzWorld } from "./arbitraries.ts";

const RUNS_PER_TOOL = Number(process.env.AXE_FUZZ_RUNS ?? 150);
const SEED = Number(process.env.AXE_FUZZ_SEED ?? 20_261_130);

let running: DataFrame;
let tokens: string[];
let tools: Array<{ name: string; inputSchema: Record<string, unknown> }>;
const world: FuzzWorld = { collections: [], definitions: {}, fields: [], ids: [], records: [] };
let requests = 0;

const EVENTS = {
  name: "events",
  fields: {
    title: { type: "string", required: true, searchable: true, max_length: 50 },
    day: { type: "date" },
    at: { type: "datetime", pii: true },
    count: { type: "integer" },
    ratio: { type: "number" },
    done: { type: "boolean", pii: true },
  },
};

beforeAll(async () => {
  running = await startDataFrame();
  tokens = [
    await running.token("axe", "admin"),
    await running.token("axe", "writer"),
    await running.token("axe", "reader"),
  ];
  const admin = await running.client("axe", "admin");
  for (const definition of [PEOPLE, EVENTS])
    expect((await call(admin, "define_collection", definition)).isError).toBe(false);
  const person = await call(admin, "create_record", { collection: "people", values: { name: "Ann", email: "a@b.c" } });
  const event = await call(admin, "create_record", { collection: "events", values: { title: "launch", count: 3 } });
  world.collections.push("people", "events");
  world.definitions = { people: PEOPLE.fields, events: EVENTS.fields };
  world.fields.push(...new Set([...Object.keys(PEOPLE.fields), ...Object.keys(EVENTS.fields)]));
  world.ids.push(person.data.id, event.data.id);
  world.records.push({ id: person.data.id, collection: "people" }, { id: event.data.id, collection: "events" });
  tools = (await admin.listTools()).tools as typeof tools;
});
afterAll(async () => {
  await running?.close();
});

/** What a call answered, reduced to what the property judges. */
async function callRaw(token: string, name: string, args: unknown) {
  requests++;
  const response = await rpc(
    running.mcpUrl,
    { jsonrpc: "2.0", id: requests, method: "tools/call", params: { name, arguments: args } },
    { authorization: `Bearer ${token}` },
  );
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, text };
}

function judge(answer: Awaited<ReturnType<typeof callRaw>>): string | undefined {
  if (answer.status >= 500) return `HTTP ${answer.status}: ${answer.text.slice(0, 300)}`;
  const { body } = answer;
  if (body?.error) {
    if (body.error.code !== -32602) return `JSON-RPC ${body.error.code}: ${body.error.message}`;
    if (!body.error.message || body.error.message.includes("\n")) return `unreadable -32602: ${body.error.message}`;
    return undefined;
  }
  const result = body?.result;
  if (!result) return `no result: ${answer.text.slice(0, 300)}`;
  const text: string = (result.content ?? []).map((c: { text?: string }) => c.text ?? "").join("\n");
  if (!text) return "a result with no text";
  if (/failed inside frame/.test(text)) return text;
  if (!result.isError && result.structuredContent === undefined) return "a success without structuredContent";
  return undefined;
}

/** Ids and collections the server handed out become inputs of later calls. */
function learn(answer: Awaited<ReturnType<typeof callRaw>>): void {
  const content = answer.body?.result?.structuredContent;
  if (answer.body?.result?.isError || !content) return;
  if (typeof content.id === "string" && world.ids.length < 200 && !world.ids.includes(content.id)) {
    world.ids.push(content.id);
    if (typeof content.collection === "string") world.records.push({ id: content.id, collection: content.collection });
  }
  if (typeof content.name === "string" && content.fields && !world.collections.includes(content.name)) {
    world.collections.push(content.name);
    for (const field of Object.keys(content.fields)) if (!world.fields.includes(field)) world.fields.push(field);
  }
}

describe("frame tools under fuzzed input (issue 21)", () => {
  test("every tools/call ends in a result, a tool error or -32602, for every tool", async () => {
    expect(tools.length).toBeGreaterThanOrEqual(10);
    const failures: string[] = [];
    for (const [index, tool] of tools.entries()) {
      const run = await fc.check(
        fc.asyncProperty(
          fc.nat({ max: tokens.length - 1 }),
          argumentsFor(tool.inputSchema, world),
          async (who, args) => {
            const answer = await callRaw(tokens[who]!, tool.name, args);
            learn(answer);
            const problem = judge(answer);
            if (problem) throw new Error(`${tool.name}(${JSON.stringify(args).slice(0, 500)}): ${problem}`);
          },
        ),
        { seed: SEED + index, numRuns: RUNS_PER_TOOL, endOnFailure: true },
      );
      if (run.failed)
        failures.push(
          `${String(run.errorInstance).slice(0, 700)} (seed ${SEED + index}, counterexample path ${run.counterexamplePath})`,
        );
    }
    // Every tool runs even when one fails, so one run shows every kind of hole.
    expect(failures).toEqual([]);
  }, 180_000); // thousands of calls: 8 s alone, 16 s at load 16

  test("afterwards every collection lists, searches, gets and shows history, and the audit chains verify", async () => {
    const reader = await running.client("axe", "reader");
    const { collections } = (await call(reader, "list_collections")).data;
    expect(collections.length).toBeGreaterThanOrEqual(2);
    for (const collection of collections) {
      let cursor: string | undefined;
      do {
        const page = await call(reader, "search_records", {
          collection: collection.name,
          limit: 100,
          ...(cursor ? { cursor } : {}),
        });
        expect(page.text).not.toMatch(/failed inside frame/);
        expect(page.isError).toBe(false);
        expect(page.data.unreadable).toBeUndefined();
        for (const record of page.data.records) {
          expect((await call(reader, "get_record", { id: record.id })).isError).toBe(false);
          expect((await call(reader, "record_history", { id: record.id })).isError).toBe(false);
        }
        cursor = page.data.next_cursor;
      } while (cursor);
    }
    await running.frame.stop(); // writes the audit rows still queued
    for (const report of await verifyAudit(running.db.sql)) expect(report.broken).toBeUndefined();
    expect(requests).toBeGreaterThanOrEqual(tools.length * RUNS_PER_TOOL);
  });
});
