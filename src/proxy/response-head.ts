/**
 * An upstream's answer head as llhttp reports it, forwarded as its own bytes: when the whole head
 * came in one read (nearly always), the header lines the caller may see are passed on as views of
 * that read, minus the hop-by-hop ones, and only the few values the proxy acts on are decoded.
 * A head that spans reads is decoded to strings before its read buffer goes back to Bun.
 */
import { HOP_BY_HOP, isEventStream, type ResponseHeaders, readResponseHeaders } from "./forward-headers.ts";
import { connectionTokens, HeadCollector, type HeadLimits } from "./head-collector.ts";

const MAX_SPANS = 128;
/** The header names the proxy reads or drops, by length, as bytes: names are compared, never decoded. */
const WATCHED: Array<Array<{ name: string; bytes: Buffer }>> = [];
for (const name of new Set([...HOP_BY_HOP, "content-length", "mcp-session-id", "content-type"]))
  (WATCHED[name.length] ??= []).push({ name, bytes: Buffer.from(name, "latin1") });

/** The watched name at `at` (ASCII case-insensitive), or undefined. */
function watchedName(source: Buffer, at: number, length: number): string | undefined {
  const candidates = WATCHED[length];
  if (!candidates) return undefined;
  next: for (const { name, bytes } of candidates) {
    for (let k = 0; k < length; k++) {
      const c = source[at + k]!;
      if ((c >= 65 && c <= 90 ? c | 32 : c) !== bytes[k]) continue next;
    }
    return name;
  }
  return undefined;
}

/** Number() of the value: its digits read as bytes when it is nothing else (as llhttp strict lets through). */
export function contentLength(source: Buffer, at: number, end: number): number {
  if (end > at && end - at <= 15) {
    let n = 0;
    for (let k = at; k < end; k++) {
      const digit = source[k]! - 48;
      if (digit < 0 || digit > 9) return Number(source.toString("latin1", at, end));
      n = n * 10 + digit;
    }
    return n;
  }
  return Number(source.toString("latin1", at, end));
}

/** isEventStream() of the value, decoded only when its first byte could begin `\s*text/event-stream`. */
export function mayBeEventStream(source: Buffer, at: number, end: number): boolean {
  const first = source[at];
  if (first === undefined || at >= end) return isEventStream("");
  // \s in latin1: tab, LF, VT, FF, CR, space, NBSP
  if ((first | 32) !== 116 && !(first >= 9 && first <= 13) && first !== 32 && first !== 0xa0) return false;
  return isEventStream(source.toString("latin1", at, end));
}

export class ResponseHeadReader {
  /** The read every span is in, while the fast path holds. */
  private source: Buffer | null = null;
  private count = 0;
  /** Per header: name start, name length, value start, value length (value length -1: no value yet). */
  private readonly spans = new Int32Array(MAX_SPANS * 4);
  private strings: HeadCollector | null = null;
  private bytes = 0;
  broken = false;

  constructor(private readonly limits: HeadLimits) {}

  reset(): void {
    this.source = null;
    this.count = 0;
    this.strings = null;
    this.bytes = 0;
    this.broken = false;
  }

  field(data: Buffer, at: number, length: number): boolean {
    if (this.strings) return this.strings.field(data, at, length);
    const i = this.count * 4;
    // a name in two pieces, a second read, or too many headers: fall back to strings
    if (
      (this.source !== null && this.source !== data) ||
      this.count >= MAX_SPANS ||
      (i > 0 && this.spans[i - 1] === -1)
    )
      return this.toStrings().field(data, at, length);
    this.source = data;
    this.spans[i] = at;
    this.spans[i + 1] = length;
    this.spans[i + 3] = -1;
    this.count++;
    return this.counted(length + 4);
  }

  value(data: Buffer, at: number, length: number): boolean {
    if (this.strings) return this.strings.fieldValue(data, at, length);
    const i = (this.count - 1) * 4;
    if (this.source !== data || this.spans[i + 3] !== -1) return this.toStrings().fieldValue(data, at, length);
    this.spans[i + 2] = at;
    this.spans[i + 3] = length;
    return this.counted(length);
  }

  /** The read is over and the head is not complete: keep what it said as strings. */
  detach(): void {
    if (!this.strings && this.count > 0) this.toStrings();
    this.source = null;
  }

  /** The head is complete: what the proxy reads of it, with its forwarded lines as views or a string. */
  finish(): ResponseHeaders | null {
    if (this.strings) {
      if (!this.strings.end()) return null;
      return readResponseHeaders(this.strings.names, this.strings.lower, this.strings.values);
    }
    const { source, spans, count } = this;
    const read: ResponseHeaders = {
      lines: "",
      raw: [],
      rawSource: source,
      length: null,
      sessionId: null,
      eventStream: false,
      upgrade: null,
    };
    if (count === 0 || source === null) return read;
    if (count > this.limits.maxHeaderCount) return null;
    for (let h = 0; h < count; h++) if (spans[h * 4 + 3] === -1) return this.decoded(); // a header without a value
    let named: Set<string> | undefined;
    let runStart = spans[0]!;
    for (let h = 0; h < count; h++) {
      const i = h * 4;
      const nameLength = spans[i + 1]!;
      const lineEnd = spans[i + 2]! + spans[i + 3]! + 2;
      let drop = false;
      const name = watchedName(source, spans[i]!, nameLength);
      if (name !== undefined) {
        // only the values the proxy reads are decoded (a decode costs ~0.1 us however short the value)
        const at = spans[i + 2]!;
        const end = at + spans[i + 3]!;
        if (name === "content-length") read.length = contentLength(source, at, end);
        else if (name === "mcp-session-id") read.sessionId = source.toString("latin1", at, end);
        else if (name === "content-type") read.eventStream = mayBeEventStream(source, at, end);
        else if (name === "upgrade") read.upgrade = source.toString("latin1", at, end);
        else if (name === "connection") {
          named = connectionTokens(source.toString("latin1", at, end));
          for (const token of named!) if (token !== "close" && token !== "keep-alive") return this.decoded();
        }
        drop = HOP_BY_HOP.has(name);
      }
      if (drop) {
        if (spans[i]! > runStart) read.raw!.push(runStart, spans[i]!);
        runStart = lineEnd;
      }
      if (h === count - 1 && lineEnd > runStart) read.raw!.push(runStart, lineEnd);
    }
    return read;
  }

  /** The slow path for a head the fast path cannot pass on as bytes. */
  private decoded(): ResponseHeaders | null {
    const strings = this.toStrings();
    if (!strings.end()) return null;
    return readResponseHeaders(strings.names, strings.lower, strings.values);
  }

  private toStrings(): HeadCollector {
    const strings = new HeadCollector(this.limits);
    const { source, spans } = this;
    for (let h = 0; h < this.count; h++) {
      const i = h * 4;
      strings.field(source!, spans[i]!, spans[i + 1]!);
      if (spans[i + 3] !== -1) strings.fieldValue(source!, spans[i + 2]!, spans[i + 3]!);
    }
    this.strings = strings;
    this.count = 0;
    return strings;
  }

  private counted(length: number): boolean {
    this.bytes += length;
    if (this.bytes > this.limits.maxHeadBytes) this.broken = true;
    return !this.broken;
  }
}
