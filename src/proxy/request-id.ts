/** X-Request-Id: kept when the caller sent a sane one, otherwise a fresh UUIDv7. */
const SANE = /^[\w.:@-]{1,128}$/;

export function requestId(incoming: string | null): string {
  return incoming !== null && SANE.test(incoming) ? incoming : Bun.randomUUIDv7();
}
