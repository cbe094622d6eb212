/**
 * Reads a Prometheus text exposition the way a scraper would, and refuses what a scraper would
 * trip on: the lines are parsed by parse-prometheus-text-format (which throws on a line it cannot
 * read), then held to the format's rules that parser lets through:
 * every sample belongs to a family declared by `# TYPE` before it, values are numbers, names and
 * label names are valid, no series appears twice, counters end in `_total`, histograms have
 * ascending buckets ending in +Inf that equal `_count`.
 */
import parsePrometheusTextFormat from "parse-prometheus-text-format";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
  /** The value of the one series with exactly these labels (undefined when absent). */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every series of a family whose labels include these. */
  series(name: string, labels?: Record<string, string>): Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/gy;

export function parseExposition(text: string): Exposition {
  parsePrometheusTextFormat(text); // throws "Encountered invalid line" on what Prometheus would refuse
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  for (const [index, line] of text.split("\n").entries()) {
    const where = `line ${index + 1} (${line})`;
    if (!line.trim()) continue;
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      if (!name || !NAME.test(name)) throw new Error(`${where}: bad metric name`);
      if (types.has(name)) throw new Error(`${where}: ${name} declared twice`);
      if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(type ?? ""))
        throw new Error(`${where}: unknown type`);
      if (type === "counter" && !name.endsWith("_total")) throw new Error(`${where}: a counter's name ends in _total`);
      types.set(name, type!);
      continue;
    }
    if (line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`${where}: not a sample`);
    const [, name, , body, raw] = match;
    const family = [name!, name!.replace(/_(bucket|sum|count)$/, "")].find((n) => types.has(n));
    if (!family) throw new Error(`${where}: sample before (or without) its # TYPE`);
    const labels: Record<string, string> = {};
    if (body) {
      LABEL_PAIR.lastIndex = 0;
      let consumed = 0;
      for (let pair = LABEL_PAIR.exec(body); pair; pair = LABEL_PAIR.exec(body)) {
        if (!LABEL_NAME.test(pair[1]!) || pair[1]!.startsWith("__")) throw new Error(`${where}: bad label name`);
        if (pair[1]! in labels) throw new Error(`${where}: label ${pair[1]} twice`);
        labels[pair[1]!] = pair[2]!;
        consumed = LABEL_PAIR.lastIndex;
      }
      if (consumed !== body.length) throw new Error(`${where}: bad label set`);
    }
    // Prometheus reads values with Go's ParseFloat: Inf, Infinity and NaN in any case
    const special = /^([+-]?)(inf|infinity|nan)$/i.exec(raw!);
    const value = special
      ? special[2]!.toLowerCase() === "nan"
        ? Number.NaN
        : special[1] === "-"
          ? -Infinity
          : Infinity
      : Number(raw);
    if (!special && (Number.isNaN(value) || !/^[+-]?[\d.]/.test(raw!)))
      throw new Error(`${where}: value is not a number`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`${where}: the same series twice`);
    seen.add(key);
    samples.push({ name: name!, labels, value });
  }
  checkHistograms(types, samples);
  const matches = (sample: Sample, labels: Record<string, string>) =>
    Object.entries(labels).every(([k, v]) => sample.labels[k] === v);
  return {
    types,
    samples,
    value(name, labels = {}) {
      const found = samples.filter(
        (s) => s.name === name && matches(s, labels) && Object.keys(s.labels).length === Object.keys(labels).length,
      );
      return found[0]?.value;
    },
    series(name, labels = {}) {
      return samples.filter((s) => s.name === name && matches(s, labels));
    },
  };
}

function checkHistograms(types: Map<string, string>, samples: Sample[]): void {
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const groups = new Map<string, Sample[]>();
    for (const s of samples.filter((s) => s.name === `${family}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const [key, buckets] of groups) {
      const bounds = buckets.map((b) => (b.labels.le === "+Inf" ? Infinity : Number(b.labels.le)));
      if (bounds.at(-1) !== Infinity) throw new Error(`${family}${key}: the last bucket is not +Inf`);
      for (let i = 1; i < buckets.length; i++)
        if (!(bounds[i]! > bounds[i - 1]!) || buckets[i]!.value < buckets[i - 1]!.value)
          throw new Error(`${family}${key}: buckets are not ascending and cumulative`);
      const count = samples.find(
        (s) => s.name === `${family}_count` && JSON.stringify(Object.entries(s.labels).sort()) === key,
      );
      if (count?.value !== buckets.at(-1)!.value) throw new Error(`${family}${key}: +Inf bucket differs from _count`);
    }
  }
}
