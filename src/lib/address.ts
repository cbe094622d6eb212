/**
 * A host as it is written before `:port` or in a URL: an IPv6 address in brackets, anything else
 * as it is.
 *
 * @example
 * `http://${urlHost(frame.bind)}:${port}` // "http://[::1]:3710", "http://127.0.0.1:3710"
 */
export function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
