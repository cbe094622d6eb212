/**
 * llhttp, Node's own HTTP/1.1 parser, as the WASM build with SIMD that undici ships and loads
 * itself wherever WebAssembly SIMD works: the same llhttp, scanning names and values 16 bytes at
 * a time (~0.6x the time of the plain build for a connector's 1.5 KB head; decision 81). undici
 * is pinned to an exact version in package.json, and the bytes are checked against
 * LLHTTP_SOURCE.sha256 when this module loads. Every request and response the proxy reads is
 * framed by it, in its default strict mode: no lenient flag is ever set. Defends against request
 * smuggling through a hand-written parser's gaps (CL+TE, obs-fold, bare CR/LF, odd chunk sizes).
 *
 * One WASM instance serves every parser; while `execute` runs, the callbacks find their parser
 * and the caller's chunk through module state, and report spans as offsets into that chunk.
 */
// require, not import: Bun's ESM view of this CommonJS module (a getter on module.exports) cost ~20 MB of RSS
const wasmBytes: Uint8Array = require("undici/lib/llhttp/llhttp_simd-wasm.js");

/** Where the parser comes from; test/proxy/llhttp.test.ts holds package.json and node_modules to it. */
export const LLHTTP_SOURCE = {
  package: "undici",
  version: "7.30.2",
  file: "lib/llhttp/llhttp_simd-wasm.js",
  sha256: "2434215e1f7fa0163f22ce895ddbeb83984fa0aa51e123164e053213e5aca028",
} as const;

/** llhttp's errno values we act on (llhttp.h; undici's constants.js loads ~5 MB of tables for the rest). */
export const ERROR = { OK: 0, PAUSED: 21, PAUSED_UPGRADE: 22, USER: 24 } as const;
export const REQUEST = 1;
export const RESPONSE = 2;
/** on_headers_complete: 1 tells llhttp the message has no body (HEAD, CONNECT answers). */
export const SKIP_BODY = 1;

/** Method names by llhttp's number, read from llhttp itself on first use. */
const METHOD_NAMES: string[] = [];

interface LlhttpExports {
  memory: WebAssembly.Memory;
  _initialize(): void;
  malloc(size: number): number;
  free(ptr: number): void;
  llhttp_alloc(type: number): number;
  llhttp_free(ptr: number): void;
  llhttp_execute(ptr: number, data: number, length: number): number;
  llhttp_finish(ptr: number): number;
  llhttp_resume(ptr: number): void;
  llhttp_resume_after_upgrade(ptr: number): void;
  llhttp_get_error_pos(ptr: number): number;
  llhttp_get_error_reason(ptr: number): number;
  llhttp_get_method(ptr: number): number;
  llhttp_get_http_major(ptr: number): number;
  llhttp_get_http_minor(ptr: number): number;
  llhttp_message_needs_eof(ptr: number): number;
  llhttp_method_name(method: number): number;
}

/** The parser whose `execute` is running, and the chunk it was handed (callbacks report offsets into it). */
let current: HttpParser | null = null;
let chunk: Uint8Array = new Uint8Array(0);
let base = 0;

const span =
  (call: (parser: HttpParser, at: number, length: number) => number) => (_p: number, at: number, length: number) =>
    call(current!, at - base, length);

const instance = load();
const llhttp = instance.exports as unknown as LlhttpExports;
let heap = new Uint8Array(llhttp.memory.buffer);

function load(): WebAssembly.Instance {
  const bytes = wasmBytes as Uint8Array;
  const digest = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
  if (digest !== LLHTTP_SOURCE.sha256)
    throw new Error(`llhttp WASM from ${LLHTTP_SOURCE.package} is not the pinned build (sha256 ${digest})`);
  const created = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
    env: {
      wasm_on_message_begin: () => current!.onMessageBegin(),
      wasm_on_url: span((p, at, length) => p.onUrl(chunk, at, length)),
      wasm_on_status: span((p, at, length) => p.onStatus(chunk, at, length)),
      wasm_on_header_field: span((p, at, length) => p.onHeaderField(chunk, at, length)),
      wasm_on_header_value: span((p, at, length) => p.onHeaderValue(chunk, at, length)),
      wasm_on_headers_complete: (_p: number, status: number, upgrade: number, keepAlive: number) =>
        current!.onHeadersComplete(status, upgrade === 1, keepAlive === 1),
      wasm_on_body: span((p, at, length) => p.onBody(chunk, at, length)),
      wasm_on_message_complete: () => current!.onMessageComplete(),
    },
  });
  (created.exports as unknown as LlhttpExports)._initialize();
  return created;
}

/** Input buffers inside WASM memory, one per nesting depth (a callback may feed another parser). */
const inputs: Array<{ ptr: number; size: number }> = [];
let depth = 0;

function input(length: number): number {
  const slot = inputs[depth] ?? (inputs[depth] = { ptr: 0, size: 0 });
  if (slot.size < length) {
    if (slot.ptr) llhttp.free(slot.ptr);
    slot.size = Math.ceil(length / 65_536) * 65_536;
    slot.ptr = llhttp.malloc(slot.size);
    heap = new Uint8Array(llhttp.memory.buffer);
  }
  return slot.ptr;
}

/** A NUL-terminated string in WASM memory (at most 200 bytes read). */
function cString(at: number): string {
  if (!at) return "";
  const memory = new Uint8Array(llhttp.memory.buffer);
  let end = at;
  while (memory[end] !== 0 && end - at < 200) end++;
  return Buffer.from(memory.subarray(at, end)).toString("latin1");
}

/**
 * One llhttp parser (a request or a response stream on one connection). Subclasses implement the
 * callbacks; each returns 0 to go on, ERROR.PAUSED to stop after this point, or an error code.
 */
export abstract class HttpParser {
  private readonly ptr: number;

  constructor(type: typeof REQUEST | typeof RESPONSE) {
    this.ptr = llhttp.llhttp_alloc(type);
  }

  /** Parses `data`; returns an llhttp errno: OK, PAUSED, PAUSED_UPGRADE, or an error (see `reason`). */
  execute(data: Uint8Array): number {
    const ptr = input(data.byteLength);
    if (heap.byteLength === 0) heap = new Uint8Array(llhttp.memory.buffer); // memory grew: the old view is detached
    heap.set(data, ptr);
    const outer = current;
    const outerChunk = chunk;
    const outerBase = base;
    current = this;
    chunk = data;
    base = ptr;
    depth++;
    const errno = llhttp.llhttp_execute(this.ptr, ptr, data.byteLength);
    depth--;
    current = outer;
    chunk = outerChunk;
    base = outerBase;
    return errno;
  }

  /** After PAUSED or an error: how many bytes of the last chunk were consumed. */
  consumed(): number {
    return llhttp.llhttp_get_error_pos(this.ptr) - inputs[depth]!.ptr;
  }

  /** The connection ended: completes a body that runs until close, or reports a truncated message. */
  finish(): number {
    const saved = current;
    current = this;
    try {
      return llhttp.llhttp_finish(this.ptr);
    } finally {
      current = saved;
    }
  }

  resume(): void {
    llhttp.llhttp_resume(this.ptr);
  }

  resumeAfterUpgrade(): void {
    llhttp.llhttp_resume_after_upgrade(this.ptr);
  }

  /** llhttp's words for the last error. */
  reason(): string {
    return cString(llhttp.llhttp_get_error_reason(this.ptr)) || "malformed HTTP";
  }

  method(): string {
    const id = llhttp.llhttp_get_method(this.ptr);
    return METHOD_NAMES[id] ?? (METHOD_NAMES[id] = cString(llhttp.llhttp_method_name(id)) || "UNKNOWN");
  }

  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion(): number {
    return llhttp.llhttp_get_http_major(this.ptr) === 1 ? llhttp.llhttp_get_http_minor(this.ptr) : -1;
  }

  /** True when the message's body runs until the connection closes. */
  needsEof(): boolean {
    return llhttp.llhttp_message_needs_eof(this.ptr) === 1;
  }

  /** Frees the WASM side; the parser must not be used after. */
  free(): void {
    llhttp.llhttp_free(this.ptr);
  }

  onMessageBegin(): number {
    return 0;
  }
  onUrl(_data: Uint8Array, _at: number, _length: number): number {
    return 0;
  }
  onStatus(_data: Uint8Array, _at: number, _length: number): number {
    return 0;
  }
  abstract onHeaderField(data: Uint8Array, at: number, length: number): number;
  abstract onHeaderValue(data: Uint8Array, at: number, length: number): number;
  abstract onHeadersComplete(status: number, upgrade: boolean, keepAlive: boolean): number;
  abstract onBody(data: Uint8Array, at: number, length: number): number;
  abstract onMessageComplete(): number;
}
