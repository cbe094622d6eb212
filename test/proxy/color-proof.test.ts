/**
 * A color's port is only a number on loopback: while the color is stopped, another local account
 * can listen there. Once the colors run releases that prove themselves, whatever else answers on a
 * color's port must never get a caller's request (its Bearer token) and must not count as healthy.
 * The program on the other side is a raw TCP server that records every byte it is sent.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { colorProof, loadColorKey, RELEASE_ANSWER_FILE } from "../../src/lib/color-proof.ts";
import type { Color } from "../../src/lib/colors.ts";
import { proxyStatus } from "../../src/proxy/admin-client.ts";
import { makeConfigDir } from "../helpers/config.ts";
import { tempDir } from "../helpers/tmp.ts";
import { waitFor } from "../helpers/wait.ts";
import { startProxy, startUpstream, stopAll } from "./harness.ts";

afterAll(stopAll);

const TOKEN = "s3cret-token-of-an-employee";

/**
 * A program another account started on a color's port: it answers every read with `answer`, or
 * with what `answer` makes of the read (null or undefined: no answer).
 */
function stranger(answer: Buffer | null | ((read: string) => string | undefined)) {
  let received = "";
  const listener = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket, data) {
        const read = data.toString("latin1");
        received += read;
        const reply = typeof answer === "function" ? answer(read) : answer;
        if (reply) socket.write(reply);
      },
    },
  });
  return { url: `http://127.0.0.1:${listener.port}`, received: () => received, stop: () => listener.stop(true) };
}

/** One that answers like frame's /healthz, or (`answer` false) never. */
function impostor(color: Color, answer: boolean) {
  const body = JSON.stringify({
    status: "ok",
    service: "axe-frame",
    color,
    release: "9.9.9",
    database: { reachable: true, migration: 99 },
  });
  const head = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
  return stranger(answer ? Buffer.from(head + body, "latin1") : null);
}

/** An install's data and secrets directories; `proving` colors run a release whose binary proves its color. */
function install(proving: Color[]) {
  const data = tempDir("axe-data");
  const secrets = tempDir("axe-secrets");
  for (const color of proving) {
    const dir = join(data, "current", color); // as root leaves it: a link to the release, with its answer on file
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, RELEASE_ANSWER_FILE), JSON.stringify({ version: "2.0.0", proves_color: true }));
  }
  return { data, secrets };
}

async function startProxyFor(paths: { data: string; secrets: string }, blue: string, green: string, extra = {}) {
  const dir = makeConfigDir({
    appliance: {
      data_dir: paths.data,
      secrets_dir: paths.secrets,
      proxy: {
        listen: "127.0.0.1:0",
        upstreams: { blue, green },
        health: { interval_ms: 100, timeout_ms: 500, healthy_threshold: 2, unhealthy_threshold: 2 },
        ...extra,
      },
    },
  });
  return startProxy(dir);
}

async function call(url: string) {
  const response = await fetch(`${url}/frame/echo`, {
    headers: { authorization: `Bearer ${TOKEN}` },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: await response.text() };
}

describe("a color's port held by another program", () => {
  test("gets only GET /proof, never a caller's request: the proxy refuses it and serves from the color that proves itself", async () => {
    const paths = install(["blue", "green"]);
    const fake = impostor("blue", true);
    const green = await startUpstream("green", { SECRETS_DIR: paths.secrets });
    const proxy = await startProxyFor(paths, fake.url, green.url); // blue is live
    await waitFor("green proved healthy", async () => (await proxyStatus(proxy.socket)).colors.green.healthy);

    for (let i = 0; i < 3; i++) {
      const answer = await call(proxy.url);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ color: "green" });
    }
    expect(fake.received()).toContain("GET /proof HTTP/1.1");
    expect(fake.received()).not.toContain(TOKEN);
    expect(fake.received()).not.toContain("/frame/");
    const status = await proxyStatus(proxy.socket);
    expect(status.colors.blue.healthy).toBe(false);
    expect(status.colors.blue.last_error).toContain("not this install's blue");
    fake.stop();
  });

  test("one that never answers holds the request until the head timeout, and still never sees it", async () => {
    const paths = install(["blue", "green"]);
    const fake = impostor("blue", false);
    const proxy = await startProxyFor(paths, fake.url, "http://127.0.0.1:9", { header_timeout_ms: 1_000 });
    const answer = await call(proxy.url);
    expect(answer.status).toBe(504);
    expect(fake.received()).toContain("GET /proof HTTP/1.1");
    expect(fake.received()).not.toContain(TOKEN);
    fake.stop();
  });

  test("a right proof with bytes after it (a second answer for the caller) is refused: the connection carries nothing", async () => {
    const paths = install(["blue", "green"]);
    const fake = stranger((read) => {
      const challenge = /x-axe-challenge: ([0-9a-f]+)/.exec(read)?.[1];
      if (!challenge) return undefined; // /healthz and anything else: never answered
      const proof = colorProof(loadColorKey(paths.secrets), "blue", challenge);
      const smuggled = "HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nsmuggled!";
      return `HTTP/1.1 204 No Content\r\nx-axe-proof: ${proof}\r\n\r\n${smuggled}`;
    });
    try {
      const proxy = await startProxyFor(paths, fake.url, "http://127.0.0.1:9");
      const answer = await call(proxy.url);
      expect(answer.status).toBe(502);
      expect(answer.body).not.toContain("smuggled!");
      expect(fake.received()).toContain("GET /proof HTTP/1.1");
      expect(fake.received()).not.toContain(TOKEN);
      expect(fake.received()).not.toContain("/frame/");
    } finally {
      fake.stop();
    }
  });

  test("a proof that is not ASCII is refused like any wrong one, and the proxy keeps serving", async () => {
    const paths = install(["blue", "green"]);
    const fake = stranger(
      Buffer.concat([
        Buffer.from("HTTP/1.1 204 No Content\r\nx-axe-proof: "),
        Buffer.alloc(64, 0xe9),
        Buffer.from("\r\n\r\n"),
      ]),
    );
    const proxy = await startProxyFor(paths, fake.url, "http://127.0.0.1:9");
    for (let i = 0; i < 2; i++) expect((await call(proxy.url)).status).toBe(502);
    expect(fake.received()).toContain("GET /proof HTTP/1.1");
    expect(fake.received()).not.toContain(TOKEN);
    const status = await proxyStatus(proxy.socket);
    expect(status.colors.blue.healthy).toBe(false);
    expect(status.colors.blue.last_error).toContain("not this install's blue");
    fake.stop();
  });

  test("a color with no release must prove itself once the other color's release does", async () => {
    const paths = install(["green"]); // blue runs nothing: whatever listens there is not ours
    const fake = impostor("blue", true);
    const proxy = await startProxyFor(paths, fake.url, "http://127.0.0.1:9");
    const answer = await call(proxy.url);
    expect(answer.status).toBe(502);
    expect(fake.received()).not.toContain(TOKEN);
    fake.stop();
  });
});

describe("colors that prove themselves", () => {
  test("are served as before; each new connection carries one proof, kept-alive ones none", async () => {
    const paths = install(["blue", "green"]);
    const blue = await startUpstream("blue", { SECRETS_DIR: paths.secrets });
    const green = await startUpstream("green", { SECRETS_DIR: paths.secrets });
    const proxy = await startProxyFor(paths, blue.url, green.url);
    await waitFor("blue proved healthy", async () => (await proxyStatus(proxy.socket)).colors.blue.healthy);
    for (let i = 0; i < 5; i++) {
      const answer = await call(proxy.url);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ color: "blue", headers: { authorization: `Bearer ${TOKEN}` } });
    }
    const proofs = await fetch(`${proxy.url}/frame/proofs`).then((r) => r.json());
    expect(proofs).toEqual({ proofs: 1 }); // one after another: one connection, proved once
  });

  test("a release from before proofs is served as before (upgrading the installed binary takes no color down)", async () => {
    const paths = install([]);
    const blue = await startUpstream("blue"); // no key: it proves nothing, as an older release
    const green = await startUpstream("green");
    const proxy = await startProxyFor(paths, blue.url, green.url);
    await waitFor("blue healthy", async () => (await proxyStatus(proxy.socket)).colors.blue.healthy);
    const answer = await call(proxy.url);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ color: "blue" });
  });

  test("a green that proves itself does not pass for blue: the proof names its color", async () => {
    const paths = install(["blue", "green"]);
    const relay = await startUpstream("green", { SECRETS_DIR: paths.secrets }); // a real green, on blue's port
    const proxy = await startProxyFor(paths, relay.url, "http://127.0.0.1:9");
    const answer = await call(proxy.url);
    expect(answer.status).toBe(502);
    const status = await proxyStatus(proxy.socket);
    expect(status.colors.blue.healthy).toBe(false);
  });
});
