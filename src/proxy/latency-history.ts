/**
 * Per-minute latency of the last hour, for the operator's status page chart: 60 slots of
 * log-spaced bucket counts, so recording is a few increments and p50/p95 come from the buckets;
 * and the switches of the live color in that hour, for the chart's markers. It survives a proxy
 * restart: `save` writes it to a file (the proxy does every minute and on stop), `load` reads it.
 */
import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import { writeFileAtomic } from "../lib/atomic-write.ts";
import { COLORS } from "../lib/colors.ts";

const MINUTE = 60_000;
const SLOTS = 60;
/** Upper bounds in milliseconds, roughly x1.5 apart from 1 ms to 30 s; the last slot is "more". */
const BOUNDS_MS = Array.from({ length: 26 }, (_, i) => Math.round(1.5 ** i * 100) / 100);

export const LatencyPointSchema = z.object({
  /** Start of the minute, ISO time. */
  minute: z.string(),
  count: z.number().int(),
  p50_ms: z.number().nullable(),
  p95_ms: z.number().nullable(),
  max_ms: z.number().nullable(),
});
export type LatencyPoint = z.infer<typeof LatencyPointSchema>;
export const SwitchEventSchema = z.object({ time: z.string(), to: z.enum(COLORS) });
export type SwitchEvent = z.infer<typeof SwitchEventSchema>;
export const LatencySeriesSchema = z.object({
  points: z.array(LatencyPointSchema),
  /** Switches of the live color in the same hour (absent from proxies before it was kept). */
  switches: z.array(SwitchEventSchema).optional(),
});
export type LatencySeries = z.infer<typeof LatencySeriesSchema>;

const SlotSchema = z.object({
  minute: z.number().int(),
  count: z.number().int().nonnegative(),
  max: z.number().nonnegative(),
  buckets: z.array(z.number().int().nonnegative()).length(BOUNDS_MS.length + 1),
});
type Slot = z.infer<typeof SlotSchema>;
const SavedSchema = z.object({ slots: z.array(SlotSchema), switches: z.array(SwitchEventSchema) });

export class LatencyHistory {
  private slots: Slot[] = [];
  private switches: SwitchEvent[] = [];

  /** The live color changed to `to`. */
  switched(to: SwitchEvent["to"], now = Date.now()): void {
    this.switches.push({ time: new Date(now).toISOString(), to });
    const since = now - SLOTS * MINUTE;
    this.switches = this.switches.filter((s) => Date.parse(s.time) >= since);
  }

  /** Writes the last hour to `file` (atomically), to be read back after a restart. */
  save(file: string): void {
    writeFileAtomic(file, JSON.stringify({ slots: this.slots, switches: this.switches }), { mode: 0o600 });
  }

  /** Reads what `save` wrote; a missing or unreadable file starts an empty hour (it is only a chart). */
  load(file: string): boolean {
    if (!existsSync(file)) return false;
    let parsed: ReturnType<typeof SavedSchema.safeParse>;
    try {
      parsed = SavedSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
    } catch {
      return false;
    }
    if (!parsed.success) return false;
    this.slots = parsed.data.slots.slice(-SLOTS);
    this.switches = parsed.data.switches;
    return true;
  }

  record(seconds: number, now = Date.now()): void {
    const minute = Math.floor(now / MINUTE);
    let slot = this.slots[this.slots.length - 1];
    if (!slot || slot.minute !== minute) {
      slot = { minute, count: 0, max: 0, buckets: new Array(BOUNDS_MS.length + 1).fill(0) };
      this.slots.push(slot);
      while (this.slots.length > SLOTS) this.slots.shift();
    }
    const ms = seconds * 1000;
    slot.count++;
    if (ms > slot.max) slot.max = ms;
    let i = 0;
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]!) i++;
    slot.buckets[i]!++;
  }

  /** One point per minute of the last hour, oldest first; minutes without requests have count 0. */
  series(now = Date.now()): LatencySeries {
    const last = Math.floor(now / MINUTE);
    const byMinute = new Map(this.slots.map((s) => [s.minute, s]));
    const points: LatencyPoint[] = [];
    for (let minute = last - SLOTS + 1; minute <= last; minute++) {
      const slot = byMinute.get(minute);
      const at = new Date(minute * MINUTE).toISOString();
      if (!slot || slot.count === 0) points.push({ minute: at, count: 0, p50_ms: null, p95_ms: null, max_ms: null });
      else
        points.push({
          minute: at,
          count: slot.count,
          p50_ms: quantile(slot, 0.5),
          p95_ms: quantile(slot, 0.95),
          max_ms: Math.round(slot.max * 100) / 100,
        });
    }
    const since = (last - SLOTS + 1) * MINUTE;
    return { points, switches: this.switches.filter((s) => Date.parse(s.time) >= since) };
  }
}

/** The bucket bound under which `q` of the minute's requests finished (capped by the slowest). */
function quantile(slot: Slot, q: number): number {
  const rank = Math.ceil(slot.count * q);
  let seen = 0;
  for (let i = 0; i < slot.buckets.length; i++) {
    seen += slot.buckets[i]!;
    if (seen >= rank) return Math.min(BOUNDS_MS[i] ?? slot.max, Math.round(slot.max * 100) / 100);
  }
  return slot.max;
}
