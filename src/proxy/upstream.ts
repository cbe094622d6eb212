/**
 * One request to one upstream over Bun's fetch (which keeps a keep-alive pool per origin).
 * Failures come back as an UpstreamFailure that says whether the request may be retried:
 * only when the connection failed, never after a timeout.
 */
export type FailureKind = "connect" | "timeout";

export class UpstreamFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

export interface UpstreamRequest {
  method: string;
  headers: Headers;
  body: ReadableStream<Uint8Array> | Uint8Array | null;
  /** Connect plus response headers. */
  headerTimeoutMs: number;
}

/** Resolves with the upstream's response once its headers are in; the body still streams. */
export async function sendUpstream(url: string, request: UpstreamRequest): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), request.headerTimeoutMs);
  try {
    return await fetch(url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
      decompress: false,
      signal: controller.signal,
      // after the headers, a stream may stay quiet for as long as it likes
      timeout: false,
    });
  } catch (error) {
    if (controller.signal.aborted)
      throw new UpstreamFailure("timeout", `no response headers within ${request.headerTimeoutMs} ms`);
    const e = error as Error & { code?: string };
    throw new UpstreamFailure("connect", e.code ?? e.message);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Wraps an upstream body so `done(bytes)` runs once when it ends, fails or the caller goes
 * away; chunks pass through as they arrive (nothing is buffered), which SSE needs.
 */
export function trackBody(body: ReadableStream<Uint8Array>, done: (bytes: number, completed: boolean) => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let bytes = 0;
  let finished = false;
  const finish = (completed: boolean) => {
    if (finished) return;
    finished = true;
    done(bytes, completed);
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done: ended, value } = await reader.read();
          if (ended) {
            controller.close();
            finish(true);
            return;
          }
          bytes += value.byteLength;
          controller.enqueue(value);
        } catch (error) {
          controller.error(error);
          finish(false);
        }
      },
      cancel(reason) {
        finish(false);
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
