import { afterEach, describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect.ts";
import {
  issueServiceToken,
  loadTokenKey,
  revokeServiceToken,
  SERVICE_TOKEN_CHANNEL,
  ServiceTokenVerifier,
} from "../../src/frame/auth/service-tokens.ts";
import { waitFor } from "../helpers/wait.ts";
import { json, rpc, startTestFrame, type TestFrame } from "./harness.ts";

let running: TestFrame | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

const whoami = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } };
const call = (token: string) => rpc(running!.mcpUrl, whoami, { authorization: `Bearer ${token}` });

/** Waits for a condition that an asynchronous notification makes true. */
const until = (condition: () => boolean, what: string, timeoutMs?: number) =>
  waitFor(what, condition, { intervalMs: 10, timeoutMs });

async function issue(expiresInMs = 60_000) {
  return issueServiceToken(running!.db.sql, running!.config.paths.secrets, {
    customer: "axe",
    entity: "labs",
    role: "writer",
    name: "cached",
    expiresInMs,
  });
}

describe("service-token cache", () => {
  test("a cached token is refused on the next request once another process revokes it", async () => {
    running = await startTestFrame();
    const verifier = running.frame.serviceTokens!;
    const { token, record } = await issue();

    expect((await call(token)).status).toBe(200);
    const hits = verifier.stats.cacheHits;
    const second = await call(token);
    expect(second.status).toBe(200);
    expect((await json(second)).result.structuredContent).toMatchObject({
      kind: "service",
      entity: "labs",
      role: "writer",
    });
    expect(verifier.stats.cacheHits).toBe(hits + 1); // answered without a token query

    // The CLI's path (`token revoke`), from a pool of its own, as the separate process would.
    const clears = verifier.stats.cacheClears;
    const other = connect(running.db.target, { max: 1 });
    try {
      expect(await revokeServiceToken(other, "axe", record.id)).toBe(true);
    } finally {
      await other.end({ timeout: 5 });
    }
    await until(() => verifier.stats.cacheClears > clears, "the revocation notification");

    const refused = await call(token);
    expect(refused.status).toBe(401);
    expect((await json(refused)).reason).toBe("service_token_revoked");
    expect(verifier.stats.cacheHits).toBe(hits + 1);
  });

  test("a revoke that finds nothing to revoke notifies nobody and changes nothing", async () => {
    running = await startTestFrame();
    const verifier = running.frame.serviceTokens!;
    const { token } = await issue();
    expect((await call(token)).status).toBe(200);
    const clears = verifier.stats.cacheClears;
    expect(await revokeServiceToken(running.db.sql, "axe", "st_000000000000")).toBe(false);
    expect(await revokeServiceToken(running.db.sql, "other", "st_000000000000")).toBe(false);
    expect((await call(token)).status).toBe(200);
    expect(verifier.stats.cacheClears).toBe(clears);
  });

  test("a reconnect of the listen connection clears the cache, so a revocation missed while it was down takes effect", async () => {
    running = await startTestFrame();
    const verifier = running.frame.serviceTokens!;
    const { token, record } = await issue();
    expect((await call(token)).status).toBe(200);
    const hits = verifier.stats.cacheHits;
    expect((await call(token)).status).toBe(200);
    expect(verifier.stats.cacheHits).toBe(hits + 1);

    // A revocation whose notification this process never hears (as while its listen connection is down).
    await running.db.sql`update meta.service_tokens set revoked_at = now() where id = ${record.id}`;
    expect((await call(token)).status).toBe(200); // still cached: nothing told this process
    expect(verifier.stats.cacheHits).toBe(hits + 2);

    const root = connect(running.db.admin, { max: 1 });
    try {
      const listeners = await root<{ pid: number }[]>`select pid from pg_stat_activity
        where datname = ${running.db.target.database} and query = ${`listen "${SERVICE_TOKEN_CHANNEL}"`}`;
      expect(listeners.length).toBe(1);
      const subscribes = verifier.stats.subscribes;
      await root`select pg_terminate_backend(${listeners[0]!.pid})`;
      await until(() => verifier.stats.subscribes > subscribes, "the listen connection to subscribe again");
      const again = await root<{ pid: number }[]>`select pid from pg_stat_activity
        where datname = ${running.db.target.database} and query = ${`listen "${SERVICE_TOKEN_CHANNEL}"`}`;
      expect(again.map((r) => r.pid)).not.toContain(listeners[0]!.pid);
      expect(again.length).toBe(1);
    } finally {
      await root.end({ timeout: 5 });
    }

    const refused = await call(token);
    expect(refused.status).toBe(401);
    expect((await json(refused)).reason).toBe("service_token_revoked");
    expect(verifier.stats.cacheHits).toBe(hits + 2);

    // The new subscription still hears revocations.
    const fresh = await issue();
    expect((await call(fresh.token)).status).toBe(200);
    expect((await call(fresh.token)).status).toBe(200);
    const clears = verifier.stats.cacheClears;
    await revokeServiceToken(running.db.sql, "axe", fresh.record.id);
    await until(() => verifier.stats.cacheClears > clears, "the revocation notification");
    expect((await call(fresh.token)).status).toBe(401);
  });

  test("a listen connection that goes deaf without re-subscribing turns the cache off within three heartbeats", async () => {
    running = await startTestFrame();
    const key = loadTokenKey(running.config.paths.secrets);
    // Three heartbeats (3 s) is the time a heartbeat may take to come back before the cache is off: at
    // 100 ms, a loaded machine's Postgres delivered it late and the cache was off before the test used it.
    const verifier = new ServiceTokenVerifier(running.db.sql, key, "axe", ["axe", "labs"], { heartbeatMs: 1_000 });
    await verifier.listen();
    try {
      const { token, record } = await issue();
      await verifier.verify(token);
      await verifier.verify(token);
      expect(verifier.stats.cacheHits).toBe(1);
      await until(() => verifier.stats.heartbeatsHeard >= 3, "our own heartbeats");
      expect(verifier.hearing()).toBe(true);

      // Deaf: the subscription is gone and postgres.js is not re-subscribing (a failed re-subscribe looks so).
      await (verifier as unknown as { unlisten: () => Promise<void> }).unlisten();
      await revokeServiceToken(running.db.sql, "axe", record.id); // its notification is never heard
      await until(() => verifier.stats.deafSpells > 0, "the missing heartbeats to be noticed");
      expect(verifier.hearing()).toBe(false);
      await expect(verifier.verify(token)).rejects.toMatchObject({ reason: "service_token_revoked" });
      expect(verifier.stats.cacheHits).toBe(1); // asked the database, not the cache
    } finally {
      verifier.close();
    }
  });

  test("an expired token is refused even while it is cached", async () => {
    running = await startTestFrame();
    const verifier = running.frame.serviceTokens!;
    // long enough that both calls below come before it expires on a loaded machine; then the test waits it out
    const { token, record } = await issue(10_000);
    expect((await call(token)).status).toBe(200);
    const hits = verifier.stats.cacheHits;
    expect((await call(token)).status).toBe(200);
    expect(verifier.stats.cacheHits).toBe(hits + 1);
    await until(() => Date.now() > record.expiresAt.getTime() + 10, "the token to expire");
    const refused = await call(token);
    expect(refused.status).toBe(401);
    expect((await json(refused)).reason).toBe("service_token_expired");
    expect(verifier.stats.cacheHits).toBe(hits + 2); // the refusal came from the cached row
  });

  test("unknown tokens are never cached, and a token issued after one was tried works at once", async () => {
    running = await startTestFrame();
    const verifier = running.frame.serviceTokens!;
    const unknown = `axe_st_${"B".repeat(43)}`;
    for (let i = 0; i < 2; i++) {
      const response = await call(unknown);
      expect(response.status).toBe(401);
      expect((await json(response)).reason).toBe("service_token_unknown");
    }
    const { token } = await issue();
    expect((await call(token)).status).toBe(200);
    expect(verifier.stats.cacheHits).toBe(0);
  });

  test("without a subscription the cache is not used, and the cache is bounded", async () => {
    running = await startTestFrame();
    const key = loadTokenKey(running.config.paths.secrets);
    const unsubscribed = new ServiceTokenVerifier(running.db.sql, key, "axe", ["axe", "labs"]);
    const { token } = await issue();
    await unsubscribed.verify(token);
    await unsubscribed.verify(token);
    expect(unsubscribed.stats.cacheHits).toBe(0);

    const small = new ServiceTokenVerifier(running.db.sql, key, "axe", ["axe", "labs"], { maxEntries: 2 });
    await small.listen();
    try {
      const [a, b, c] = [token, (await issue()).token, (await issue()).token];
      await small.verify(a);
      await small.verify(b);
      await small.verify(a); // hit; b is now the least recently used
      await small.verify(c); // evicts b
      expect(small.stats.cacheHits).toBe(1);
      await small.verify(a);
      await small.verify(c);
      expect(small.stats.cacheHits).toBe(3);
      await small.verify(b); // evicted: read again
      expect(small.stats.cacheHits).toBe(3);
    } finally {
      small.close();
    }
    await small.verify(token);
    expect(small.stats.cacheHits).toBe(3); // closed: no cache
  });
});
