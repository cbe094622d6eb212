/**
 * Probes one color's GET /healthz on an interval. A color turns healthy after
 * `healthyThreshold` good answers in a row and unhealthy after `unhealthyThreshold` bad ones;
 * a refused connection or a timeout is a bad answer, and a connection the proxy could not open
 * marks it down at once, as does an answer without the color's proof once its release proves itself
 * (color-prover.ts). Changes go to a HealthConsumer.
 */
import { CHALLENGE_HEADER, newChallenge, PROOF_HEADER } from "../lib/color-proof.ts";
import type { Color } from "./admin-schema.ts";
import type { ColorProver } from "./color-prover.ts";
import type { HealthSettings } from "./settings.ts";

export interface Probe {
  ok: boolean;
  /** The release a healthy frame reports. */
  release: string | null;
  error: string | null;
  /** It answered without the color's proof: not ours, down at once. */
  unproven?: boolean;
}

export interface HealthConsumer {
  healthChanged(color: Color, healthy: boolean, probe: Probe): void;
}

export class HealthCheck {
  healthy: boolean;
  release: string | null = null;
  lastCheck: Date | null = null;
  lastError: string | null = null;
  private streak = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    readonly color: Color,
    readonly upstream: string,
    private readonly settings: HealthSettings,
    private readonly consumer: HealthConsumer,
    /** What the state file last said, until the first probe decides. */
    initiallyHealthy = false,
    /** The color's proof: asked for with every probe once its release proves itself. */
    private readonly prover: ColorProver | null = null,
  ) {
    this.healthy = initiallyHealthy;
  }

  /** Probes once at once (so start-up re-checks the saved state), then every interval. */
  async start(): Promise<void> {
    this.stopped = false;
    const first = await this.probe();
    // the first answer decides alone: a restart must not wait for a streak
    this.record(first, true);
    this.schedule();
  }

  /** One probe now, recorded like a scheduled one (the thresholds still apply). */
  async checkNow(): Promise<void> {
    const probe = await this.probe();
    if (!this.stopped) this.record(probe, false);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The proxy itself could not connect: down at once, without waiting for the next probes. */
  markDown(reason: string): void {
    this.lastCheck = new Date();
    this.lastError = reason;
    this.streak = 0;
    if (!this.healthy) return;
    this.healthy = false;
    this.consumer.healthChanged(this.color, false, { ok: false, release: null, error: reason });
  }

  /** One GET of the health path; never throws. */
  async probe(): Promise<Probe> {
    const challenge = this.prover?.refresh() ? newChallenge() : null;
    try {
      const response = await fetch(this.upstream + this.settings.path, {
        signal: AbortSignal.timeout(this.settings.timeoutMs),
        headers: { "user-agent": "axe-proxy-health", ...(challenge ? { [CHALLENGE_HEADER]: challenge } : {}) },
        keepalive: false,
      });
      if (challenge && !this.prover!.verify(challenge, response.headers.get(PROOF_HEADER))) {
        await response.body?.cancel();
        const error = `what answers on ${this.color}'s port is not this install's ${this.color}: no valid ${PROOF_HEADER} on ${this.settings.path}`;
        return { ok: false, release: null, error, unproven: true };
      }
      const body = (await response.json().catch(() => ({}))) as { release?: unknown };
      const release = typeof body.release === "string" ? body.release : null;
      return response.status === 200
        ? { ok: true, release, error: null }
        : { ok: false, release, error: `HTTP ${response.status}` };
    } catch (error) {
      const e = error as Error & { code?: string };
      return {
        ok: false,
        release: null,
        error: e.name === "TimeoutError" ? `no answer within ${this.settings.timeoutMs} ms` : (e.code ?? e.message),
      };
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(async () => {
      const probe = await this.probe();
      if (this.stopped) return;
      this.record(probe, false);
      this.schedule();
    }, this.settings.intervalMs);
  }

  private record(probe: Probe, decideNow: boolean): void {
    if (probe.unproven) return this.markDown(probe.error!);
    this.lastCheck = new Date();
    this.lastError = probe.error;
    if (probe.ok && probe.release) this.release = probe.release;
    this.streak = probe.ok === this.healthy ? 0 : this.streak + 1;
    const threshold = probe.ok ? this.settings.healthyThreshold : this.settings.unhealthyThreshold;
    if (probe.ok !== this.healthy && (decideNow || this.streak >= threshold)) {
      this.healthy = probe.ok;
      this.streak = 0;
      this.consumer.healthChanged(this.color, probe.ok, probe);
    } else if (decideNow) {
      this.consumer.healthChanged(this.color, this.healthy, probe);
    }
  }
}
