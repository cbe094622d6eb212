/**
 * Service tokens: the appliance's own bearer tokens for automation and the operator (the second
 * half of the dual-token model). A token is shown once at issue; the database keeps only
 * HMAC-SHA256(token) under the key in `{secrets}/token.key` (0600, created on first need, never
 * overwritten), so a database dump alone cannot be replayed as tokens.
 *
 * @example
 * const { token } = await issueServiceToken(sql, config.paths.secrets, {
 *   customer: "axe", entity: "axe", role: "admin", name: "deploy-gate", expiresInMs: 5 * 60_000,
 * });
 * // Authorization: Bearer ${token}
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import { ROLES, type Role } from "../../config/customers.ts";
import type { Sql } from "../../db/connect.ts";
import { AuthError, ConfigError, UsageError } from "../../lib/errors.ts";
import { createSecretFileOnce, readSecretFile, type SecretOwner } from "../../lib/secret-file.ts";
import type { Principal } from "../principal.ts";
import { auditColumns } from "../store/audit.ts";

/** Every service token starts with this, so it is told apart from a JWT and found by secret scanners. */
export const SERVICE_TOKEN_PREFIX = "axe_st_";
export const TOKEN_KEY_FILE = "token.key";
const TOKEN_SHAPE = /^axe_st_[A-Za-z0-9_-]{43}$/;

export interface ServiceTokenRecord {
  id: string;
  name: string;
  customer: string;
  entity: string;
  role: Role;
  createdAt: Date;
  expiresAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface IssueOptions {
  customer: string;
  entity: string;
  role: Role;
  /** A label for people: what uses the token ("deploy-gate", "zapier"). */
  name: string;
  expiresInMs: number;
  /** Who issues it, for its row in meta.audit_log (`cli:{user}`, `deploy`); default "frame". */
  who?: string;
}

/** Reads the HMAC key, creating it (32 random bytes, mode 0600, for `fileOwner` when given) the first time. */
export function loadTokenKey(secretsDir: string, fileOwner?: SecretOwner): Buffer {
  const file = join(secretsDir, TOKEN_KEY_FILE);
  createSecretFileOnce(file, () => `${randomBytes(32).toString("base64")}\n`, fileOwner);
  const key = Buffer.from(readSecretFile(file), "base64");
  if (key.length < 32)
    throw new ConfigError(
      "TOKEN_KEY_SHORT",
      `${file}: expected at least 32 bytes of base64, found ${key.length}`,
      "move the file aside and let the appliance create a new one (this invalidates every service token)",
    );
  return key;
}

export function tokenHmac(key: Buffer, token: string): string {
  return createHmac("sha256", key).update(token).digest("hex");
}

/** Creates a token, stores its HMAC, and returns the token (the only time it exists in clear). */
export async function issueServiceToken(
  sql: Sql,
  secretsDir: string,
  options: IssueOptions,
): Promise<{ token: string; record: ServiceTokenRecord }> {
  if (!ROLES.includes(options.role))
    throw new UsageError("BAD_ROLE", `role must be one of ${ROLES.join(", ")}, not '${options.role}'`);
  if (!options.name.trim() || options.name.length > 64)
    throw new UsageError("BAD_NAME", "a token name is 1 to 64 characters");
  if (!(options.expiresInMs > 0)) throw new UsageError("BAD_EXPIRY", "a token must expire in the future");
  const key = loadTokenKey(secretsDir);
  const token = SERVICE_TOKEN_PREFIX + randomBytes(32).toString("base64url");
  const id = `st_${randomBytes(6).toString("hex")}`;
  const expiresAt = new Date(Date.now() + options.expiresInMs);
  const started = performance.now();
  // A token is a grant of access: its row in meta's chain commits with it, or neither does.
  const row = await sql.begin(async (tx) => {
    const [inserted] = await tx<TokenRow[]>`
      insert into meta.service_tokens (id, name, customer, entity, role, hmac, expires_at)
      values (${id}, ${options.name}, ${options.customer}, ${options.entity}, ${options.role}, ${tokenHmac(key, token)}, ${expiresAt})
      returning id, name, customer, entity, role, created_at, expires_at, last_used_at, revoked_at`;
    await tx`insert into meta.audit_log ${tx(
      auditColumns({
        at: new Date(),
        who: options.who ?? "frame",
        customer: options.customer,
        entity: options.entity,
        tool: "token issue",
        outcome: "ok",
        durationMs: performance.now() - started,
        detail: { token: id, entity: options.entity, role: options.role, expires_at: expiresAt.toISOString() },
      }),
    )}`;
    return inserted!;
  });
  return { token, record: toRecord(row) };
}

export async function listServiceTokens(sql: Sql, customer: string): Promise<ServiceTokenRecord[]> {
  const rows = await sql<TokenRow[]>`
    select id, name, customer, entity, role, created_at, expires_at, last_used_at, revoked_at
    from meta.service_tokens where customer = ${customer} order by created_at, id`;
  return rows.map(toRecord);
}

/** The channel a revocation is announced on; every serve process listens and drops its cached tokens. */
export const SERVICE_TOKEN_CHANNEL = "axe_service_tokens";

/**
 * Marks a token revoked; returns false when no such unrevoked token exists. The NOTIFY is sent in
 * the same transaction as the update (pg_notify is transactional), so a serve process hears of the
 * revocation exactly when it commits, and never of one that rolled back.
 */
export async function revokeServiceToken(sql: Sql, customer: string, id: string, who = "frame"): Promise<boolean> {
  const started = performance.now();
  return sql.begin(async (tx) => {
    const rows = await tx<{ entity: string }[]>`update meta.service_tokens set revoked_at = now()
      where id = ${id} and customer = ${customer} and revoked_at is null returning entity`;
    if (rows.length !== 1) return false;
    await tx`select pg_notify(${SERVICE_TOKEN_CHANNEL}, ${id})`;
    await tx`insert into meta.audit_log ${tx(
      auditColumns({
        at: new Date(),
        who,
        customer,
        entity: rows[0]!.entity,
        tool: "token revoke",
        outcome: "ok",
        durationMs: performance.now() - started,
        detail: { token: id },
      }),
    )}`;
    return true;
  });
}

export function looksLikeServiceToken(token: string): boolean {
  return token.startsWith(SERVICE_TOKEN_PREFIX);
}

export interface ServiceTokenCacheOptions {
  /** How long a verified row is trusted without asking the database again. Default 60 s. */
  ttlMs?: number;
  /** Most rows kept; the least recently used goes first. Default 10,000. */
  maxEntries?: number;
  /**
   * How often the verifier NOTIFYs itself to prove its listen connection still hears; the cache
   * is used only while its own heartbeat came back within three of these. Default 2 s.
   */
  heartbeatMs?: number;
  /**
   * Makes a pool of the verifier's own for its listen connection (one connection), made anew when
   * a deaf one is given up. Without it the listen connection is `sql`'s, and one that postgres.js
   * could not subscribe again (the database was down at that moment) stays deaf.
   */
  listenPool?: () => Sql;
}

/** Payloads on SERVICE_TOKEN_CHANNEL that start so are heartbeats, not revocations. */
const HEARTBEAT = "heartbeat:";
/** Heartbeats without an answer before a deaf listen connection is subscribed anew. */
const RESUBSCRIBE_AFTER = 5;

interface CachedToken {
  row: TokenRow;
  /** Date.now() when the row was read from the database. */
  readAt: number;
}

/**
 * Checks a presented service token. Valid: known HMAC, not revoked, not expired, issued for this
 * customer and one of its entities. Last-used time is written at most once a minute per token.
 *
 * Verified rows are cached by HMAC digest (LRU, bounded, at most `ttlMs` old) so a call does not
 * pay a database round trip for its token. Revocation stays immediate: `revokeServiceToken`
 * NOTIFYs `SERVICE_TOKEN_CHANNEL` in its transaction and `listen()` clears the cache on every
 * notification, and again on every (re)subscribe of the listen connection, since notifications
 * sent while it was down are lost. Until the first subscribe the cache is not used. A listen
 * connection can also go deaf without a re-subscribe (postgres.js does not retry a failed one), so
 * the verifier NOTIFYs a heartbeat of its own every `heartbeatMs`, uses the cache only while the
 * last one came back within three of them, and after five subscribes anew on a pool of its own. Expiry, customer and entity are checked from the row on
 * every use; unknown tokens are never cached.
 */
export class ServiceTokenVerifier {
  private readonly lastTouched = new Map<string, number>();
  private readonly cache = new Map<string, CachedToken>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly heartbeatMs: number;
  /** This process's heartbeat payload; other processes' heartbeats are ignored. */
  private readonly beat = `${HEARTBEAT}${randomUUID()}`;
  /** Date.now() when our own heartbeat (or a subscribe) was last heard. */
  private heardAt = 0;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  /** Whether the last heartbeat tick found the listen connection deaf. */
  private deaf = false;
  /** True between a subscribe of the listen connection and close(); the cache is used only then. */
  private listening = false;
  /** Bumped on every clear, so a lookup that raced a revocation does not cache what it read. */
  private generation = 0;
  private unlisten: (() => Promise<void>) | undefined;
  private readonly makeListenPool: (() => Sql) | undefined;
  private listenPool: Sql | undefined;
  private resubscribing = false;
  /** Date.now() of the last subscribe made anew by `resubscribeIfLong`. */
  private resubscribedAt = 0;
  private closed = false;
  /** Counters for metrics and tests: cache hits and clears, subscribes, own heartbeats heard, spells without them. */
  readonly stats = { cacheHits: 0, cacheClears: 0, subscribes: 0, heartbeatsHeard: 0, deafSpells: 0 };

  constructor(
    private readonly sql: Sql,
    private readonly key: Buffer,
    private readonly customer: string,
    private entities: readonly string[],
    cache: ServiceTokenCacheOptions = {},
  ) {
    this.ttlMs = cache.ttlMs ?? 60_000;
    this.maxEntries = cache.maxEntries ?? 10_000;
    this.heartbeatMs = cache.heartbeatMs ?? 2_000;
    this.makeListenPool = cache.listenPool;
  }

  /**
   * Subscribes to revocations (a dedicated connection postgres.js re-subscribes after it drops).
   * The cache is switched on by the first subscribe and cleared by every one after it. A listen
   * connection deaf for `RESUBSCRIBE_AFTER` heartbeats is given up and subscribed anew, at most
   * once per that many: postgres.js tries once when the connection drops, and a database still
   * down at that moment (restarted, or started again by the color) left it deaf for good.
   */
  async listen(): Promise<void> {
    await this.subscribe();
    if (this.closed) return;
    this.heartbeat = setInterval(() => {
      const deaf = this.listening && !this.hearing();
      if (deaf && !this.deaf) this.stats.deafSpells++; // once per spell, not per heartbeat missed
      this.deaf = deaf;
      if (deaf) this.resubscribeIfLong();
      this.sql`select pg_notify(${SERVICE_TOKEN_CHANNEL}, ${this.beat})`.catch(() => {});
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  private async subscribe(): Promise<void> {
    if (this.makeListenPool) this.listenPool ??= this.makeListenPool();
    const subscription = await (this.listenPool ?? this.sql).listen(
      SERVICE_TOKEN_CHANNEL,
      (payload) => {
        if (payload === this.beat) this.heard();
        else if (!payload.startsWith(HEARTBEAT)) this.clear();
      },
      () => {
        this.clear();
        this.stats.subscribes++;
        this.heard();
        if (!this.closed) this.listening = true;
      },
    );
    if (this.closed) {
      await subscription.unlisten(); // closed while subscribing
      return;
    }
    this.unlisten = subscription.unlisten;
  }

  private resubscribeIfLong(): void {
    const now = Date.now();
    const after = RESUBSCRIBE_AFTER * this.heartbeatMs;
    if (!this.makeListenPool || this.resubscribing || now - this.heardAt < after || now - this.resubscribedAt < after)
      return;
    this.resubscribing = true;
    this.resubscribedAt = now;
    // postgres.js keeps a channel whose LISTEN failed and answers every later listen() with that
    // failure, so the deaf pool goes whole (not awaited: its connection may be dead) and a new one listens
    this.listenPool?.end({ timeout: 0 }).catch(() => {});
    this.listenPool = undefined;
    this.unlisten = undefined;
    this.subscribe()
      .catch(() => {}) // still down: the next spell tries again
      .finally(() => {
        this.resubscribing = false;
      });
  }

  /** The customer's entities after a reload of customers.yaml; cached rows are dropped, so each token is judged again. */
  useEntities(entities: readonly string[]): void {
    this.entities = [...entities];
    this.clear();
  }

  /** True while our own heartbeat comes back: the listen connection hears revocations. */
  hearing(): boolean {
    return Date.now() - this.heardAt <= 3 * this.heartbeatMs;
  }

  private heard(): void {
    if (!this.hearing()) this.clear(); // deaf for a while: revocations may have been missed
    this.heardAt = Date.now();
    this.stats.heartbeatsHeard++;
  }

  /**
   * Stops using the cache and unsubscribes. The UNLISTEN is not awaited: a dead database must not
   * hold a shutdown, and ending the pool closes the listen connection anyway.
   */
  close(): void {
    this.closed = true;
    this.listening = false;
    clearInterval(this.heartbeat);
    this.clear();
    this.unlisten?.().catch(() => {});
    this.unlisten = undefined;
    this.listenPool?.end({ timeout: 0 }).catch(() => {});
    this.listenPool = undefined;
  }

  async verify(token: string): Promise<Principal> {
    if (!TOKEN_SHAPE.test(token)) throw new AuthError("service_token_malformed", "the service token is malformed", 401);
    const digest = tokenHmac(this.key, token);
    const row = this.cached(digest) ?? (await this.lookup(digest));
    if (row.revoked_at) throw new AuthError("service_token_revoked", "the service token was revoked", 401);
    if (row.expires_at.getTime() <= Date.now())
      throw new AuthError("service_token_expired", "the service token has expired", 401);
    if (row.customer !== this.customer || !this.entities.includes(row.entity))
      throw new AuthError(
        "service_token_elsewhere",
        "the service token was issued for another customer or entity",
        401,
      );
    this.touch(row.id);
    return {
      kind: "service",
      id: `service:${row.id}`,
      serviceTokenId: row.id,
      label: row.name,
      customer: row.customer,
      entity: row.entity,
      role: row.role,
      scopes: [],
      expiresAt: row.expires_at,
    };
  }

  private cached(digest: string): TokenRow | undefined {
    if (!this.listening || !this.hearing()) return undefined;
    const entry = this.cache.get(digest);
    if (!entry) return undefined;
    this.cache.delete(digest);
    if (Date.now() - entry.readAt >= this.ttlMs) return undefined;
    this.cache.set(digest, entry); // most recently used goes last
    this.stats.cacheHits++;
    return entry.row;
  }

  private async lookup(digest: string): Promise<TokenRow> {
    const generation = this.generation;
    const readAt = Date.now();
    const [row] = await this.sql<TokenRow[]>`
      select id, name, customer, entity, role, hmac, created_at, expires_at, last_used_at, revoked_at
      from meta.service_tokens where hmac = ${digest}`;
    // The lookup is by keyed hash; compare again in constant time so the check never rests on the index alone.
    if (!row || !timingSafeEqual(Buffer.from(row.hmac!, "hex"), Buffer.from(digest, "hex")))
      throw new AuthError("service_token_unknown", "the service token is not known here", 401);
    // Only rows that can pass are kept, and only when no revocation arrived while the row was read.
    if (
      this.listening &&
      this.hearing() &&
      generation === this.generation &&
      !row.revoked_at &&
      row.customer === this.customer &&
      this.entities.includes(row.entity)
    ) {
      this.cache.delete(digest);
      this.cache.set(digest, { row, readAt });
      if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    }
    return row;
  }

  private clear(): void {
    this.generation++;
    this.cache.clear();
    this.stats.cacheClears++;
  }

  private touch(id: string): void {
    const now = Date.now();
    if (now - (this.lastTouched.get(id) ?? 0) < 60_000) return;
    this.lastTouched.set(id, now);
    this.sql`update meta.service_tokens set last_used_at = now() where id = ${id}`.catch(() =>
      this.lastTouched.delete(id),
    );
  }
}

/** "90d", "12h", "30m", "2w", "45s" to milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*([smhdw])$/.exec(text.trim());
  if (!match)
    throw new UsageError(
      "BAD_DURATION",
      `'${text}' is not a duration; expected a number and a unit, such as 90d, 12h, 30m or 2w`,
    );
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[
    match[2] as "s" | "m" | "h" | "d" | "w"
  ];
  const ms = Number(match[1]) * unit;
  if (ms <= 0) throw new UsageError("BAD_DURATION", `'${text}' is not in the future`);
  return ms;
}

interface TokenRow {
  id: string;
  name: string;
  customer: string;
  entity: string;
  role: Role;
  hmac?: string;
  created_at: Date;
  expires_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

function toRecord(row: TokenRow): ServiceTokenRecord {
  return {
    id: row.id,
    name: row.name,
    customer: row.customer,
    entity: row.entity,
    role: row.role,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}
