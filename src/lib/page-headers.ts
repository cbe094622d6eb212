/**
 * The headers of the HTML page the operator opens (the status page, on the proxy's admin socket
 * and under `status --serve`): never cached, and a Content-Security-Policy under which it runs no
 * script, loads nothing, submits nothing and is framed by no one. Every value on the page is
 * escaped; this is what holds if one ever is not.
 *
 * @example
 * new Response(html, { headers: PAGE_HEADERS });
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  // inline <style> and style attributes only; the page's refresh is a <meta>, which CSP does not govern
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
};
