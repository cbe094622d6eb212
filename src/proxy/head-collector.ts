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

/** Values and targets up to this long are compared with the last message's before they are decoded. */
const REUSED_MAX = 256;
/** Header names up to this long are kept, decoded and lower-cased once, in NAMES. */
const NAME_MAX = 64;
const NAMES_MAX = 1_024;
/** Header names seen before, by length and first and last byte (a bounded table; a miss decodes as before). */
const NAMES = new Map<number, { name: string; lower: string }>();

/** True when `text` is exactly the latin1 decoding of the `length` bytes at `at`. */
export function sameBytes(text: string, data: Uint8Array, at: number, length: number): boolean {
  if (text.length !== length) return false;
  for (let k = 0; k < length; k++) if (text.charCodeAt(k) !== data[at + k]) return false;
  return true;
}

/** `data.toString("latin1", at, at + length)`, or `known` when that is what it would give (no decode). */
export function decodeLike(known: string | undefined, data: Uint8Array, at: number, length: number): string {
  if (known !== undefined && length <= REUSED_MAX && sameBytes(known, data, at, length)) return known;
  return (data as Buffer).toString("latin1", at, at + length);
}

/** A whole header name as decoded and lower-cased before, or undefined. */
function knownName(data: Uint8Array, at: number, length: number): { name: string; lower: string } | undefined {
  if (length === 0 || length > NAME_MAX) return undefined;
  const known = NAMES.get((length << 16) | (data[at]! << 8) | data[at + length - 1]!);
  return known !== undefined && sameBytes(known.name, data, at, length) ? known : undefined;
}

function rememberName(name: string, lower: string): void {
  if (name.length === 0 || name.length > NAME_MAX || NAMES.size >= NAMES_MAX) return;
  NAMES.set((name.length << 16) | (name.charCodeAt(0) << 8) | name.charCodeAt(name.length - 1), { name, lower });
}

/**
 * Decoding a string costs ~0.1 us however short it is, so what repeats is not decoded again:
 * header names come from a table of names seen before (with their lower case), and a value is
 * compared with the value at the same place in the connection's last message first. Either way
 * the strings are exactly the bytes' latin1 decoding. A request's lines that can go on as their
 * own bytes (`source`, `lines`) need no strings at all, so of those only the values the proxy
 * reads are decoded at once (`read`); the rest wait for `decodeAll`, or `detach` at a read's end.
 */
export class HeadCollector {
  readonly names: string[] = [];
  /** The names in lower case, computed once. */
  readonly lower: string[] = [];
  values: string[] = [];
  /** Bytes of the head so far (start line included by the caller through `count`). */
  bytes = 0;
  broken: LimitBroken | null = null;
  private name = "";
  /** The lower case of `name` when it came whole from NAMES. */
  private nameLower: string | null = null;
  private value = "";
  private inValue = false;
  /** The last message's values (its arrays swap with these on reset). */
  private lastValues: string[] = [];
  /**
   * The read every header line is in, while each line so far reads exactly `${name}: ${value}\r\n`
   * as it would be written from the strings (one space after the colon, none after the value):
   * then `lines` holds each line's [start, end) in it, CRLF included. Null otherwise (a head
   * across reads, a name or value in pieces, other whitespace, a header without a value).
   */
  source: Buffer | null = null;
  readonly lines: number[] = [];
  private bytesOk = true;
  private lineStart = 0;
  private nameEnd = 0;
  private valueStart = -1;
  private valueEnd = 0;
  /** The current value is not decoded yet (see `read`). */
  private deferred = false;
  /** Values not decoded yet, while the lines go on as bytes: index, start, end in `source`. */
  private readonly later: number[] = [];

  /**
   * `read`: the lower-case names whose values are read (a request's); the others are decoded only
   * when something needs the strings (`decodeAll`), since while every line is passed on as its
   * own bytes nothing does. Until then their place in `values` holds "". Without `read`, every
   * value is decoded as it comes.
   */
  constructor(
    private readonly limits: HeadLimits,
    private readonly read: ReadonlySet<string> | null = null,
  ) {}

  /** Empties it for the next message on the same connection (the last head's arrays are no longer read). */
  reset(): void {
    const last = this.values;
    this.values = this.lastValues;
    this.lastValues = last;
    this.names.length = 0;
    this.lower.length = 0;
    this.values.length = 0;
    this.bytes = 0;
    this.broken = null;
    this.name = "";
    this.nameLower = null;
    this.value = "";
    this.inValue = false;
    this.source = null;
    this.lines.length = 0;
    this.bytesOk = true;
    this.deferred = false;
    this.later.length = 0;
  }

  /** Decodes the values left for later (while their read is still valid); `values` is whole after. */
  decodeAll(): string[] {
    const { later, values, source } = this;
    for (let k = 0; k < later.length; k += 3) {
      const i = later[k]!;
      values[i] = decodeLike(this.lastValues[i], source!, later[k + 1]!, later[k + 2]! - later[k + 1]!);
    }
    later.length = 0;
    return values;
  }

  /** The read is over and the head is not complete: its buffer goes back, so what is left for later is decoded now. */
  detach(): void {
    if (this.deferred) {
      this.value = this.source!.toString("latin1", this.valueStart, this.valueEnd);
      this.deferred = false;
    }
    this.decodeAll();
    this.bytesOk = false;
    this.source = null;
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
    if (this.bytesOk) {
      if (this.name !== "" || (this.source !== null && this.source !== data)) this.bytesOk = false;
      else {
        this.source = data;
        this.lineStart = at;
        this.nameEnd = at + length;
        this.valueStart = -1;
      }
    }
    const known = this.name === "" ? knownName(data, at, length) : undefined;
    if (known !== undefined) {
      this.name = known.name;
      this.nameLower = known.lower;
    } else {
      this.name += data.toString("latin1", at, at + length);
      this.nameLower = null; // a name in pieces (a head across reads) is lower-cased whole
    }
    return this.count(length + 4, this.name.length);
  }

  fieldValue(data: Buffer, at: number, length: number): boolean {
    if (!this.inValue) {
      this.inValue = true;
      this.valueStart = at;
      this.valueEnd = at + length;
      if (this.source !== data) this.bytesOk = false;
      if (this.bytesOk && this.read !== null && !this.read.has(this.lowerName())) {
        this.value = "";
        this.deferred = true;
      } else this.value = decodeLike(this.lastValues[this.values.length], data, at, length);
      return this.count(length, this.name.length + length + 4);
    }
    this.value += data.toString("latin1", at, at + length);
    this.bytesOk = false;
    return this.count(length, this.name.length + this.value.length + 4);
  }

  /** The head is complete; false when it holds too many headers. */
  end(): boolean {
    if (this.inValue || this.name !== "") this.push();
    if (this.names.length > this.limits.maxHeaderCount) this.broken = "count";
    if (!this.bytesOk) {
      this.decodeAll();
      this.source = null;
    }
    return this.broken === null;
  }

  /** The current name in lower case (remembered in NAMES). */
  private lowerName(): string {
    let lower = this.nameLower;
    if (lower === null) rememberName(this.name, (this.nameLower = lower = this.name.toLowerCase()));
    return lower;
  }

  private push(): void {
    if (this.bytesOk) this.keepLine();
    if (this.deferred) {
      this.deferred = false;
      if (this.bytesOk) this.later.push(this.values.length, this.valueStart, this.valueEnd);
      else {
        // this line cannot go as bytes: none can, so every value is decoded (their read is this one)
        this.value = this.source!.toString("latin1", this.valueStart, this.valueEnd);
        this.decodeAll();
      }
    } else if (!this.bytesOk && this.later.length > 0) this.decodeAll();
    this.names.push(this.name);
    this.lower.push(this.lowerName());
    // llhttp drops the whitespace before a value, not after it
    const v = this.value;
    const last = v.charCodeAt(v.length - 1);
    this.values.push(last === 32 || last === 9 ? v.replace(/[ \t]+$/, "") : v);
    this.name = "";
    this.nameLower = null;
    this.value = "";
    this.inValue = false;
    if (this.names.length > this.limits.maxHeaderCount) this.broken = "count";
  }

  /** The line just read is kept as a range of its read when its bytes are what the strings would write. */
  private keepLine(): void {
    const data = this.source!;
    const { nameEnd, valueStart, valueEnd } = this;
    const last = data[valueEnd - 1];
    if (
      valueStart === nameEnd + 2 &&
      valueEnd > valueStart &&
      data[nameEnd] === 58 && // ':'
      data[nameEnd + 1] === 32 &&
      last !== 32 &&
      last !== 9 &&
      data[valueEnd] === 13 &&
      data[valueEnd + 1] === 10
    )
      this.lines.push(this.lineStart, valueEnd + 2);
    else this.bytesOk = false;
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
