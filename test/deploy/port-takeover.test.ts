/**
 * Another local account listens on a color's port while that color is stopped (decision 70). With
 * the real proxy, the real colors and the real receiver (the compiled binary), neither a deploy's
 * gate token nor an employee's Bearer token may reach it, and the stranger must never go live.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { colorUrl } from "../../src/deploy/switch.ts";
import { issueServiceToken } from "../../src/frame/auth/service-tokens.ts";
import { RELEASE_ANSWER_FILE } from "../../src/lib/color-proof.ts";
import type { Color } from "../../src/lib/colors.ts";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { waitFor } from "../helpers/wait.ts";
import {
  type ApplianceUnderTest,
  healthOf,
  releaseStreamFile,
  runAppliance,
  startAppliance,
  toolsList,
} from "./appliance.ts";
import { makeRelease } from "./fixtures.ts";

let app: ApplianceUnderTest;

beforeAll(async () => {
  app = await startAppliance();
  const first = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("3.0.0-a"))).done;
  if (first.code !== 0) throw new Error(`setup deploy failed: ${first.stdout} ${first.stderr}`);
}, 120_000);

afterAll(async () => {
  await app?.stop();
});

/** A frame look-alike on `color`'s port that says whatever a gate wants to hear and keeps every Authorization it is sent. */
function stranger(color: Color, release: string) {
  const tokens: string[] = [];
  const paths: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: app.config.appliance.frame.ports[color],
    fetch(request) {
      paths.push(new URL(request.url).pathname);
      const authorization = request.headers.get("authorization");
      if (authorization) tokens.push(authorization);
      return Response.json({
        status: "ok",
        service: "axe-frame",
        color,
        release,
        database: { reachable: true, migration: 99 },
      });
    },
  });
  return { tokens, paths, stop: () => server.stop(true) };
}

async function employeeToken(): Promise<string> {
  const { token } = await issueServiceToken(app.db!.sql, app.config.paths.secrets, {
    customer: app.config.customer.name,
    entity: app.config.customer.entities[0]!.name,
    role: "reader",
    name: "employee",
    expiresInMs: 600_000,
  });
  return token;
}

/** tools/list through the proxy; its status. */
async function listTools(token: string): Promise<number> {
  const response = await toolsList(app, token);
  await response.text();
  return response.status;
}

describe("a stranger on a stopped color's port", () => {
  test("the receiver keeps each release's answer: this one proves its color", () => {
    const answer = JSON.parse(
      readFileSync(join(app.config.paths.data, "releases", "3.0.0-a", RELEASE_ANSWER_FILE), "utf8"),
    );
    expect(answer).toMatchObject({ proves_color: true });
  });

  test("a deploy onto that color fails at the health gate: the gate's token never reaches it, the live color stays", async () => {
    expect((await proxyStatus(app.socket)).live).toBe("green");
    const fake = stranger("blue", "3.0.0-b"); // blue runs nothing yet: its port is free to take
    try {
      const run = await runAppliance(app, ["deploy", "receive"], releaseStreamFile(await makeRelease("3.0.0-b"))).done;
      expect(run.code).not.toBe(0);
      const health = run.report?.steps.find((s) => s.step === "health");
      expect(health?.ok).toBe(false);
      expect(`${run.stdout}${run.stderr}`).toContain("does not prove it is this install's blue");
      expect(run.report?.steps.some((s) => s.step === "mcp")).toBe(false);
      expect(fake.tokens).toEqual([]);
      expect((await proxyStatus(app.socket)).live).toBe("green");
      expect(await healthOf(colorUrl(app.config, "green"))).toMatchObject({ release: "3.0.0-a" });
    } finally {
      fake.stop();
    }
  }, 180_000);

  test("when the live color stops, an employee's token does not go to whatever takes its port", async () => {
    const token = await employeeToken();
    expect(await listTools(token)).toBe(200);
    await app.backend.stop("green");
    const fake = stranger("green", "3.0.0-a");
    try {
      const status = await listTools(token);
      expect(status).toBeGreaterThanOrEqual(502); // nothing of ours answers: a proxy error, not the stranger's 200
      expect(fake.tokens).toEqual([]);
      expect(fake.paths.every((p) => p === "/proof" || p === "/healthz")).toBe(true);
      const green = (await proxyStatus(app.socket)).colors.green;
      expect(green.healthy).toBe(false);
      expect(green.last_error).toContain("not this install's green");
    } finally {
      fake.stop();
    }
    await app.backend.start("green");
    await waitFor("green proved healthy again", async () => (await proxyStatus(app.socket)).colors.green.healthy, {
      timeoutMs: 60_000,
    });
    expect(await listTools(token)).toBe(200);
  }, 180_000);
});
