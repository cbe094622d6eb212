/**
 * X-Request-Id: the id a request is logged under here, in frame and in its audit rows. A caller
 * cannot choose it: one from a trusted proxy (the tunnel, `proxy.trusted_proxies`) is kept when it
 * is sane, as its X-Forwarded-* are; any other is replaced by a fresh UUIDv7.
 */
const SANE = /^[\w.:@-]{1,128}$/;

export function requestId(incoming: string | null | undefined, trusted: boolean): string {
  return trusted && incoming && SANE.test(incoming) ? incoming : Bun.randomUUIDv7();
}
