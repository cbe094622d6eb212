/**
 * The header lines of one message as llhttp hands them over (a name or value may come in several
 * pieces when a head spans reads), kept byte for byte (latin1) with their original case, and
 * held to the limits on line length, header count and total head size.
 */
export interface HeadLimits {
  maxHeadBytes: number;
  maxHeaderCount: number;
  maxLineBytes: number;
}

export type LimitBroken = "head" | "count" | "line";

export class HeadCollector {
  readonly names: string[] = [];
  /** The names in lower case, computed once. */
  readonly lower: string[] = [];
  readonly values: string[] = [];
  /** Bytes of the head so far (start line included by the caller through `count`). */
  bytes = 0;
  broken: LimitBroken | null = null;
  private name = "";
  private value = "";
  private inValue = false;

  constructor(private readonly limits: HeadLimits) {}

  /** Empties it for the next message on the same connection (its arrays are reused). */
  reset(): void {
    this.names.length = 0;
    this.lower.length = 0;
    this.values.length = 0;
    this.bytes = 0;
    this.broken = null;
    this.name = "";
    this.value = "";
    this.inValue = false;
  }

  /** Counts bytes of the start line; false when a limit is crossed. */
  count(length: number, line: number): boolean {
    this.bytes += length;
    if (line > this.limits.maxLineBytes) this.broken = "line";
    else if (this.bytes > this.limits.maxHeadBytes) this.broken = "head";
    return this.broken === null;
  }

  field(data: Buffer, at: number, length: number): boolean {
    if (this.inValue) this.push();
    this.name += data.toString("latin1", at, at + length);
    return this.count(length + 4, this.name.length);
  }

  fieldValue(data: Buffer, at: number, length: number): boolean {
    this.inValue = true;
    this.value += data.toString("latin1", at, at + length);
    return this.count(length, this.name.length + this.value.length + 4);
  }

  /** The head is complete; false when it holds too many headers. */
  end(): boolean {
    if (this.inValue || this.name !== "") this.push();
    if (this.names.length > this.limits.maxHeaderCount) this.broken = "count";
    return this.broken === null;
  }

  private push(): void {
    this.names.push(this.name);
    this.lower.push(this.name.toLowerCase());
    // llhttp drops the whitespace before a value, not after it
    const v = this.value;
    const last = v.charCodeAt(v.length - 1);
    this.values.push(last === 32 || last === 9 ? v.replace(/[ \t]+$/, "") : v);
    this.name = "";
    this.value = "";
    this.inValue = false;
    if (this.names.length > this.limits.maxHeaderCount) this.broken = "count";
  }
}

/** Lower-case header names to values; repeated headers joined with ", " (as a list header reads). */
export function headerMap(lower: readonly string[], values: readonly string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (let i = 0; i < lower.length; i++) {
    const name = lower[i]!;
    const previous = map[name];
    map[name] = previous === undefined ? values[i]! : `${previous}, ${values[i]}`;
  }
  return map;
}

/** The lower-case tokens of a Connection header (the headers it names are hop-by-hop). */
export function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const tokens = new Set<string>();
  for (const token of value.split(",")) {
    const t = token.trim().toLowerCase();
    if (t !== "") tokens.add(t);
  }
  return tokens;
}
