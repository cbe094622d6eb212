/**
 * Everything a backup command needs, resolved once from the config: the restic program, the
 * three repositories with their password files, the snapshot host name, and the paths.
 */
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { ringPeer } from "../config/customers.ts";
import { type Config, secretPath } from "../config/load.ts";
import type { BackupSettings } from "../config/sections.ts";
import { BackupError } from "../lib/errors.ts";
import { selfCommand } from "../lib/version.ts";
import { callKind, deadlineSeconds } from "./deadlines.ts";
import { type Repo, Restic, type TierName } from "./restic.ts";
import { ringSshCommand } from "./ssh-command.ts";
import { readStatus } from "./status.ts";

export type Keep = BackupSettings["local"]["keep"];

export interface RingTarget {
  repo: Repo;
  peer: string;
}

export interface BackupContext {
  config: Config;
  settings: BackupSettings;
  host: string;
  stateDir: string;
  local: Repo;
  /** Undefined when the ring is disabled or has no peer; `ringSkip` says why. */
  ring?: RingTarget;
  ringSkip?: string;
  cold: Repo & { volume: string; marker: string };
  /** The operator's --allow-prune-damaged: retention runs even on a tier marked damaged. */
  allowPruneDamaged?: boolean;
  /** Found lazily: `backup status` works without restic. */
  restic(): Restic;
}

export function backupContext(config: Config): BackupContext {
  const settings = config.appliance.backup;
  const under = (base: string, p: string) => (isAbsolute(p) ? p : join(base, p));
  const local: Repo = {
    tier: "local",
    repository: under(config.paths.data, settings.local.repository),
    passwordFile: secretPath(config, settings.local.password_file),
  };
  const { ring, ringSkip } = ringTarget(config, settings);
  const cold = {
    tier: "cold" as const,
    repository: under(settings.cold.volume, settings.cold.repository),
    passwordFile: secretPath(config, settings.cold.password_file),
    volume: settings.cold.volume,
    marker: settings.cold.marker,
  };
  let restic: Restic | undefined;
  return {
    config,
    settings,
    host: settings.host ?? config.customer.name,
    stateDir: config.paths.state,
    local,
    ring,
    ringSkip,
    cold,
    restic: () =>
      (restic ??= Restic.detect(settings.restic, {
        cacheDir: join(config.paths.data, "cache", "restic"),
        deadlineFor: (repo, args) =>
          1000 * deadlineSeconds(settings, callKind(args), localSize(config.paths.state), repo.tier === "ring"),
      })),
  };
}

function ringTarget(config: Config, settings: BackupSettings): { ring?: RingTarget; ringSkip?: string } {
  if (!settings.ring.enabled) return { ringSkip: "ring tier disabled in appliance.yaml" };
  const peer = settings.ring.peer
    ? config.fleet.customers.find((c) => c.name === settings.ring.peer)
    : ringPeer(config.fleet, config.customer.name);
  if (settings.ring.peer && !peer)
    throw new BackupError(
      "RING_PEER_UNKNOWN",
      `backup.ring.peer "${settings.ring.peer}" is not a customer in customers.yaml`,
      "fix appliance.yaml backup.ring.peer",
    );
  if (!peer && !settings.ring.repository)
    return { ringSkip: `no ring peer: ${config.customer.name} is alone in the customers.yaml ring` };
  const repository = settings.ring.repository ?? defaultRingRepository(peer!.machine, config.customer.name);
  const identity = settings.ring.identity_file && secretPath(config, settings.ring.identity_file);
  if (identity && /[\s"'\\]/.test(identity))
    throw new BackupError(
      "RING_IDENTITY_PATH",
      `backup.ring.identity_file ${JSON.stringify(identity)} has a space, quote or backslash: restic's sftp.command cannot carry it`,
      "move the key to a path without them and name that path",
    );
  const sshCommand = ringSshCommand(repository, settings.ring.ssh_command, settings.ring, identity);
  if (identity && !sshCommand?.split(" ").includes(identity))
    throw new BackupError(
      "RING_IDENTITY_UNUSED",
      `backup.ring.identity_file is set, but the ring does not connect with ssh (repository ${repository}${settings.ring.ssh_command ? `, ssh_command ${settings.ring.ssh_command}` : ""}): the key would not be used`,
      "remove backup.ring.identity_file, or name the key in your own ssh command's configuration",
    );
  // the peer writes the key files restic derives with their own parameters: sftp-guard.ts bounds them
  const options = sshCommand
    ? [`sftp.command=${[...selfCommand(), "backup", "sftp-guard", "--", sshCommand].join(" ")}`]
    : [];
  return {
    ring: {
      peer: peer?.name ?? repository,
      repo: {
        tier: "ring",
        repository,
        passwordFile: secretPath(config, settings.ring.password_file),
        options,
        connectTimeout: settings.ring.connect_timeout,
      },
    },
  };
}

/** The account install.sh --ring-peer makes on every machine for its ring neighbour (never the deploy user). */
export const RING_ACCOUNT = "axe-ring";

/** Where a customer's ring copy lives on its peer: the ring account is chrooted so that `/{customer}` is its one directory. */
export function defaultRingRepository(peerMachine: string, customer: string): string {
  return `sftp:${RING_ACCOUNT}@${peerMachine}:/${customer}`;
}

/** The cold SSD is there when its volume holds the marker file. */
export function coldPresent(ctx: BackupContext): boolean {
  return ctx.settings.cold.enabled && existsSync(join(ctx.cold.volume, ctx.cold.marker));
}

/** A tier's repository when it can be reached now, else why not (for a "skipped" line). */
export function tierRepo(ctx: BackupContext, tier: TierName): { repo?: Repo; why: string } {
  if (tier === "local") return { repo: ctx.local, why: "" };
  if (tier === "ring") return { repo: ctx.ring?.repo, why: ctx.ringSkip ?? "" };
  if (coldPresent(ctx)) return { repo: ctx.cold, why: "" };
  return {
    why: ctx.settings.cold.enabled ? `volume ${ctx.cold.volume} not mounted` : "cold tier disabled in appliance.yaml",
  };
}

/** Age limits per tier in hours, for `backup status`. */
export function tierLimits(ctx: BackupContext): Array<{ tier: TierName; enabled: boolean; limitHours: number }> {
  return [
    { tier: "local", enabled: true, limitHours: ctx.settings.local.max_age_hours },
    { tier: "ring", enabled: Boolean(ctx.ring), limitHours: ctx.settings.ring.max_age_hours },
    { tier: "cold", enabled: ctx.settings.cold.enabled, limitHours: ctx.settings.cold.max_age_days * 24 },
  ];
}

/** The local repository's last recorded size, which sizes the deadlines; read once per process. */
let knownSize: { stateDir: string; size: number | undefined } | undefined;
function localSize(stateDir: string): number | undefined {
  if (knownSize?.stateDir !== stateDir) {
    let size: number | undefined;
    try {
      size = readStatus(stateDir).tiers.local?.size;
    } catch {
      size = undefined;
    }
    knownSize = { stateDir, size };
  }
  return knownSize.size;
}
