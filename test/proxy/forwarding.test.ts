/** The request path over real loopback HTTP: routes, headers, bodies, streams, own answers. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { forwardStamp, readColorKey } from "../../src/lib/color-proof.ts";
import { type InProcessProxy, proxyConfigDir, startProxy, startUpstream, stopAll, type Upstream } from "./harness.ts";

let blue: Upstream;
let green: Upstream;
let fixed: Upstream;
let proxy: InProcessProxy;

beforeAll(async () => {
  [blue, green, fixed] = await Promise.all([
    startUpstream("blue", { RELEASE: "1.0.0" }),
    startUpstream("green", { RELEASE: "1.1.0" }),
    startUpstream("blueprint"),
  ]);
  proxy = await startProxy(
    proxyConfigDir(blue, green, { routes: [{ prefix: "/blueprint/", upstream: fixed.url }], max_body_bytes: 100_000 }),
  );
});
afterAll(stopAll);

const echo = async (path: string, init: RequestInit = {}) =>
  (await fetch(proxy.url + path, init)).json() as Promise<Record<string, any>>;

describe("routing", () => {
  test("the proxy answers its own /healthz as axe-proxy", async () => {
    const response = await fetch(`${proxy.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ok", service: "axe-proxy", live: "blue" });
  });

  test("/frame/ goes to the live color with path and query intact", async () => {
    const body = await echo("/frame/echo?a=1&b=two");
    expect(body.color).toBe("blue");
    expect(body.path).toBe("/frame/echo?a=1&b=two");
  });

  test("the protected resource metadata, root and path-inserted, goes to frame", async () => {
    expect((await echo("/.well-known/oauth-protected-resource")).color).toBe("blue");
    expect((await echo("/.well-known/oauth-protected-resource/frame/mcp")).color).toBe("blue");
  });

  test("a configured prefix goes to its fixed upstream, unknown paths get a JSON 404", async () => {
    expect((await echo("/blueprint/echo")).color).toBe("blueprint");
    const missing = await fetch(`${proxy.url}/nothing-here`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toBe("no_route");
  });

  test("a path that climbs out of /frame/ is routed as what it resolves to, never to frame", async () => {
    const response = await fetch(`${proxy.url}/frame/../blueprint/echo`);
    expect((await response.json()) as { color: string; path: string }).toMatchObject({
      color: "blueprint",
      path: "/blueprint/echo",
    });
  });
});

describe("headers", () => {
  test("X-Forwarded-* are ours, hop-by-hop headers are dropped, Host is kept, X-Request-Id added", async () => {
    const body = await echo("/frame/echo", {
      headers: {
        host: "axe.axelabs.ai",
        "x-forwarded-for": "6.6.6.6",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "evil.example",
        "keep-alive": "timeout=5",
        "x-custom": "kept",
        connection: "x-custom-hop",
        "x-custom-hop": "drop me",
      },
    });
    const h = body.headers as Record<string, string>;
    expect(h.host).toBe("axe.axelabs.ai");
    expect(h["x-forwarded-for"]).toBe("127.0.0.1");
    expect(h["x-forwarded-proto"]).toBe("http");
    expect(h["x-forwarded-host"]).toBe("axe.axelabs.ai");
    expect(h["x-custom"]).toBe("kept");
    expect(h["keep-alive"]).toBeUndefined();
    expect(h["x-custom-hop"]).toBeUndefined();
    expect(h["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("a caller's X-Request-Id is replaced by ours (it names the caller's audit rows in frame), sent on and echoed back", async () => {
    const chosen = await fetch(`${proxy.url}/frame/echo`, { headers: { "x-request-id": "req-123" } });
    const ours = chosen.headers.get("x-request-id");
    expect(ours).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await chosen.json()) as any).headers["x-request-id"]).toBe(ours);
    const wild = await fetch(`${proxy.url}/frame/echo`, { headers: { "x-request-id": "a b\tc" } });
    expect(wild.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("only a color gets the proxy's stamp (frame believes X-Request-Id on it), never a fixed upstream", async () => {
    const toColor = await echo("/frame/echo", { headers: { "x-axe-forwarded": "f".repeat(64) } });
    const stamp = forwardStamp(readColorKey(proxy.settings.secretsDir)!);
    expect(toColor.headers["x-axe-forwarded"]).toBe(stamp); // the caller's own is dropped
    const toFixed = await echo("/blueprint/echo", { headers: { "x-axe-forwarded": stamp } });
    expect(toFixed.headers["x-axe-forwarded"]).toBeUndefined();
  });

  test("compressed bodies pass through as they are", async () => {
    const response = await fetch(`${proxy.url}/frame/gzip`, { decompress: false });
    expect(response.headers.get("content-encoding")).toBe("gzip");
    expect(new TextDecoder().decode(Bun.gunzipSync(new Uint8Array(await response.arrayBuffer())))).toBe(
      "blue compressed",
    );
  });
});

describe("bodies and streams", () => {
  test("request bodies reach the upstream whole, streamed or with a length", async () => {
    const data = "y".repeat(50_000);
    expect(await echo("/frame/echo", { method: "POST", body: data })).toMatchObject({ bodyBytes: 50_000 });
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode("z".repeat(1000)));
        c.close();
      },
    });
    expect(await echo("/frame/echo", { method: "PUT", body: stream })).toMatchObject({
      method: "PUT",
      bodyBytes: 10_000,
    });
  });

  test("a large response arrives whole", async () => {
    const response = await fetch(`${proxy.url}/frame/big`);
    expect((await response.arrayBuffer()).byteLength).toBe(200_000);
  });

  test("SSE events arrive as they are sent, not at the end", async () => {
    const response = await fetch(`${proxy.url}/frame/sse?n=3&gap=300`);
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    // the upstream needs 900 ms for the whole stream; the first event must come before the rest
    expect(first).toContain("data: blue 0");
    expect(first).not.toContain("event: end");
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toContain("event: end");
  });

  test("the access log has one JSON line per request with the agreed fields", async () => {
    const answer = await fetch(`${proxy.url}/frame/echo?log=1`);
    const id = answer.headers.get("x-request-id");
    await answer.arrayBuffer();
    const line = proxy.accessLines().find((l) => l.id === id);
    expect(line).toMatchObject({ msg: "request", method: "GET", path: "/frame/echo", status: 200, color: "blue" });
    expect(typeof line!.bytes).toBe("number");
    expect(line!.bytes as number).toBeGreaterThan(0);
    expect(typeof line!.duration_ms).toBe("number");
    expect(typeof line!.time).toBe("string");
  });
});
