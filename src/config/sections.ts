/**
 * The sections of appliance.yaml, one schema per mode. Every key has a default, so an
 * appliance.yaml that only says `customer: axe` is a working machine on the design's ports.
 */

import { z } from "zod";
import { urlHost } from "../lib/address.ts";
import { parsePostgresUrl } from "./postgres-url.ts";

const ms = (fallback: number) =>
  z.number().int().positive("expected a positive number of milliseconds").default(fallback);
const port = (fallback: number) =>
  z.number().int().min(1).max(65535, "expected a TCP port (1-65535)").default(fallback);
const httpUrl = z.url({ protocol: /^https?$/, error: "expected an http(s) URL such as http://127.0.0.1:3710" });
const hostPort = z
  .string()
  .regex(/^(\[[0-9a-f:]+\]|[a-z0-9.-]+):\d{1,5}$/i, "expected host:port such as 127.0.0.1:3712");

/** A local account's name, not root (running as root is what leaving it unset means). */
const accountName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, "expected an account name such as postgres or _axe")
  .refine((name) => name !== "root", "root is what leaving it unset means; name an account that is not root");

const Keep = z.strictObject({
  last: z.number().int().min(0).default(0),
  hourly: z.number().int().min(0).default(0),
  daily: z.number().int().min(0).default(7),
  weekly: z.number().int().min(0).default(4),
  monthly: z.number().int().min(0).default(12),
});

/** A URL's user:password@ (restic's rest:, s3: and the like): secrets live in 0600 files, never in appliance.yaml. */
const URL_PASSWORD = /:\/\/[^/@\s]*:[^/@\s]*@/;
/** A restic repository: a path or a URL, never one that carries a password. */
const repository = () =>
  z
    .string()
    .refine(
      (r) => !URL_PASSWORD.test(r),
      "the repository URL holds a password; appliance.yaml holds no secrets (use an sftp: repository with the ring's ssh key, or a path)",
    );

export const DatabaseSection = z.strictObject({
  /** Production Postgres, e.g. postgres://frame@127.0.0.1:3700/frame. Omit for the embedded cluster. */
  url: z
    .string()
    .refine((u) => parsePostgresUrl(u) !== undefined, "expected a postgres:// URL")
    .refine(
      (u) => !parsePostgresUrl(u)?.hasPassword,
      "the URL holds a password; put it in the file named by database.password_file",
    )
    .optional(),
  password_file: z.string().optional(),
  /** Embedded cluster: the OS user Postgres runs as when the appliance runs as root. */
  embedded_run_as: z.string().default("postgres"),
});

export const FrameSection = z.strictObject({
  bind: z.string().default("127.0.0.1"),
  ports: z.strictObject({ blue: port(3710), green: port(3711) }).default({ blue: 3710, green: 3711 }),
  /** Base of the public URL; default https://{customer host}. The MCP URL is {public_url}/frame/mcp. */
  public_url: httpUrl.optional(),
  /** Entra base URL; tests point it at a local stand-in. */
  entra_authority: httpUrl.default("https://login.microsoftonline.com"),
  /** Scheme and host of v1 token issuers ({base}/{tid}/); tests point it at the stand-in. */
  entra_v1_issuer_base: httpUrl.default("https://sts.windows.net"),
  /** Host header values accepted besides the public host and loopback names. */
  allowed_hosts: z.array(z.string()).default([]),
  /** Origin header values accepted besides the public URL's origin and claude.ai. */
  allowed_origins: z.array(z.string()).default([]),
  max_body_bytes: z.number().int().positive().default(1_048_576),
  /** How often serve signs the audit chains' heads (anchors); rows since the last anchor are unproven. */
  audit_anchor_minutes: z.number().int().min(1).max(1440).default(5),
  /**
   * The account blue and green run as when root starts them (launchd, systemd, `up`); unset: root.
   * With the embedded cluster it is the cluster's account (database.embedded_run_as), so a color
   * starts Postgres as itself (decision 79).
   */
  run_as: accountName.optional(),
});

/** host:port on a loopback address (127.0.0.0/8, ::1, localhost). */
const loopbackHostPort = hostPort.refine(
  (value) => /^(127(\.\d{1,3}){3}|localhost|\[::1\]):\d+$/i.test(value),
  "expected a loopback host:port such as 127.0.0.1:3714 (metrics are for a local scraper only)",
);

/** 127.0.0.0/8, ::1 (in any spelling), either as an IPv4-mapped IPv6 address, or localhost. */
export function isLoopbackAddress(address: string): boolean {
  const bare = address.trim().toLowerCase();
  if (bare === "localhost") return true;
  try {
    const host = new URL(`http://${urlHost(bare)}/`).hostname;
    return /^127\./.test(host) || host === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:/.test(host);
  } catch {
    return false;
  }
}

export const ProxySection = z.strictObject({
  listen: hostPort.default("127.0.0.1:3712"),
  /**
   * Where Prometheus scrapes the proxy's /metrics over TCP (loopback only; the admin socket's
   * /metrics stays too); `off` serves none. A port that is taken costs the metrics, never the proxy.
   */
  metrics_listen: z.union([z.literal("off"), loopbackHostPort]).default("127.0.0.1:3714"),
  /** Unix socket of the admin API (mode 0600); a relative path is under the data directory. */
  admin_socket: z.string().default("run/proxy.sock"),
  /**
   * The tunnel's own door (relative: under data_dir): a Unix socket only root may use, which no
   * other account can take while the proxy is stopped, unlike :3712. Requests through it come from
   * the tunnel, so their X-Forwarded-* and X-Request-Id are believed. "off": none.
   */
  tunnel_socket: z.union([z.literal("off"), z.string().min(1)]).default("run/tunnel.sock"),
  /** The blue/green pair; either may live on another host. */
  upstreams: z.strictObject({ blue: httpUrl, green: httpUrl }).optional(),
  /** Fixed routes by path prefix to other services on the Mac mini; `websocket: true` lets their requests upgrade. */
  routes: z
    .array(
      z.strictObject({ prefix: z.string().startsWith("/"), upstream: httpUrl, websocket: z.boolean().default(false) }),
    )
    .default([]),
  /** Whether requests to the blue/green pair may upgrade to WebSocket. */
  frame_websocket: z.boolean().default(false),
  /**
   * Peers whose X-Forwarded-* headers are believed (the tunnel). A loopback address is every local
   * account's: the proxy ignores it, and says so when it starts (an older runbook showed one).
   */
  trusted_proxies: z.array(z.string()).default([]),
  health: z
    .strictObject({
      path: z.string().startsWith("/").default("/healthz"),
      interval_ms: ms(1000),
      timeout_ms: ms(1000),
      healthy_threshold: z.number().int().positive().default(2),
      unhealthy_threshold: z.number().int().positive().default(2),
    })
    .prefault({}),
  drain_timeout_ms: ms(30_000),
  pause_timeout_ms: ms(10_000),
  /** Request line plus headers. */
  max_header_bytes: z.number().int().min(1024).max(65_536).default(16_384),
  /** Header lines in one request. */
  max_header_count: z.number().int().min(8).max(1000).default(100),
  /** The request line, and each header line. */
  max_line_bytes: z.number().int().min(256).max(65_536).default(8_192),
  max_body_bytes: z.number().int().positive().default(10_485_760),
  /** A request head must arrive whole this long after its first byte (slowloris); then 408. */
  client_head_timeout_ms: ms(10_000),
  /** After client_head_timeout_ms, a request body must average at least this many bytes per second; then 408. */
  min_body_bytes_per_s: z.number().int().min(0).default(1_024),
  /** Connect plus response headers from an upstream; then 504. A refused connection is a 502 at once. */
  header_timeout_ms: ms(60_000),
  /** Seconds a caller's connection may sit idle between requests (time spent waiting for an upstream does not count). */
  idle_timeout_s: z.number().int().min(1).max(3_600).default(75),
  /** One JSON line per request on stderr. */
  access_log: z.boolean().default(true),
});

export const DeploySection = z.strictObject({
  keep_releases: z.number().int().min(2).default(5),
  health_timeout_ms: ms(30_000),
  max_release_bytes: z
    .number()
    .int()
    .positive()
    .default(200 * 1024 * 1024),
  /** How proxy, blue and green are kept alive. */
  service_backend: z.enum(["launchd", "systemd", "child"]).optional(),
});

/** Backup tiers: 1 on this machine, 2 the ring peer, 3 the cold SSD; each has its section below. */
export const TIERS = ["local", "ring", "cold"] as const;
export type TierName = (typeof TIERS)[number];

export const BackupSection = z.strictObject({
  /** Host name recorded in snapshots (restic --host); default: this customer's name. */
  host: z
    .string()
    .regex(/^[\w.-]+$/, "expected a host name such as axe")
    .optional(),
  /** `restic check --read-data-subset` for `backup verify`: a percentage such as 5% or n/t. */
  check_subset: z
    .string()
    .regex(/^(\d+(\.\d+)?%|\d+\/\d+|\d+[kmgt]?)$/i, "expected a subset such as 5% or 1/10")
    .default("5%"),
  /** restic binary; default: `restic` on PATH. */
  restic: z.string().default("restic"),
  /**
   * Seconds each external call may take before it is interrupted (SIGINT, then SIGKILL) and its tier
   * recorded as failed. Unset: sized to the data (the repository's size at `rate_mb_s`, with a floor).
   */
  deadlines: z
    .strictObject({
      /** snapshots, unlock, init, cat, stats, forget: default 120 s (10 min over a ring peer). */
      quick: z.number().positive().optional(),
      /** The dump and the files snapshot: default max(30 min, size / rate). */
      backup: z.number().positive().optional(),
      /** restic copy to ring and cold: default max(10 min, size / rate). */
      copy: z.number().positive().optional(),
      /** restic check and the drills' restores: default max(30 min, size / rate). */
      check: z.number().positive().optional(),
      /** restic prune: default max(30 min, size / rate). */
      prune: z.number().positive().optional(),
      /** The throughput the defaults assume, MB/s (a slow ring link: lower it). */
      rate_mb_s: z.number().positive().default(5),
    })
    .prefault({}),
  local: z
    .strictObject({
      /** Relative paths are under data_dir. */
      repository: repository().default("backup/restic"),
      password_file: z.string().default("restic-local.password"),
      keep: Keep.prefault({}),
      max_age_hours: z.number().positive().default(26),
    })
    .prefault({}),
  ring: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Peer customer; default: the next customer in the ring. */
      peer: z.string().optional(),
      /** restic repository URL, default sftp:axe-ring@{peer machine}:/{customer} (the peer's chrooted ring account). */
      repository: repository().optional(),
      /** The ssh command restic's sftp backend runs (sftp.command), e.g. "ssh -F /opt/axe/config/ssh_config peer -s sftp". */
      ssh_command: z.string().optional(),
      /**
       * The ring's own ssh key (relative: under secrets_dir), given to ssh as `-i FILE -o IdentitiesOnly=yes`;
       * install.sh makes `ring_ed25519`. Unset: ssh's default identities (root's ~/.ssh).
       */
      identity_file: z.string().optional(),
      /** ssh ConnectTimeout (seconds): a peer that accepts TCP but never answers fails in this time. */
      connect_timeout: z.number().int().positive().default(10),
      /** ssh ServerAliveInterval and ServerAliveCountMax: a peer that stops answering mid-copy fails in their product. */
      server_alive_interval: z.number().int().positive().default(15),
      server_alive_count: z.number().int().positive().default(4),
      password_file: z.string().default("restic-ring.password"),
      /** false for an append-only peer (rest-server --append-only): the peer prunes, we never forget there. */
      forget: z.boolean().default(true),
      keep: Keep.prefault({}),
      max_age_hours: z.number().positive().default(50),
    })
    .prefault({}),
  /** Continuous WAL archiving (point-in-time restore). */
  wal: z
    .strictObject({
      /**
       * Archiving is on: the embedded cluster archives every segment (archive_command = `backup wal-push`),
       * `backup schedule` adds the wal-ship timer and the daily run takes a base backup.
       */
      enabled: z.boolean().default(false),
      /** Where `backup wal-push` puts each segment, fsynced; relative paths are under data_dir. The account Postgres runs as owns it. */
      spool: z.string().default("wal-spool"),
      /** Postgres' archive_timeout (seconds): while anything is written, a segment is closed and archived at least this often. */
      archive_timeout_seconds: z.number().int().min(1).max(3600).default(60),
      /** The binary archive_command runs; default: {config dir}/../bin/axe-appliance when it exists (install.sh's), else this one. */
      program: z.string().optional(),
      /**
       * `backup status` limits, minutes, on each tier's RPO: the age of the oldest archived change it
       * does not hold yet (the cold SSD's is cold.max_age_days).
       */
      rpo_minutes: z
        .strictObject({ local: z.number().positive().default(2), ring: z.number().positive().default(10) })
        .prefault({}),
      /** How often the timer runs `backup wal-ship` (minutes). */
      ship_every_minutes: z.number().int().positive().default(5),
    })
    .prefault({}),
  cold: z
    .strictObject({
      /** false on a machine that never gets an SSD: status then stops asking for one. */
      enabled: z.boolean().default(true),
      volume: z.string().default("/Volumes/axe-cold"),
      marker: z.string().default(".axe-cold"),
      /** Relative to the volume. */
      repository: repository().default("restic"),
      password_file: z.string().default("restic-cold.password"),
      keep: Keep.prefault({}),
      max_age_days: z.number().positive().default(30),
    })
    .prefault({}),
});
export type BackupSettings = z.output<typeof BackupSection>;

const percent = (fallback: number) => z.number().min(0).max(100, "expected a percentage (0-100)").default(fallback);

/** What `status` calls yellow and red. */
export const StatusSection = z
  .strictObject({
    /** Free space on data_dir's file system under which the disk check is yellow, and red (percent of the file system). */
    disk_warn_free_percent: percent(15),
    disk_fail_free_percent: percent(5),
  })
  .refine((s) => s.disk_fail_free_percent <= s.disk_warn_free_percent, {
    error: "disk_fail_free_percent must not be above disk_warn_free_percent",
    path: ["disk_fail_free_percent"],
  });
