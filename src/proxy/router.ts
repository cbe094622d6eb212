/**
 * Picks the upstream for a path: the frame routes go to the blue/green pair, the configured
 * prefixes to their fixed upstreams, anything else to nobody (404). The longest prefix wins.
 */
export type Route = ({ kind: "frame" } | { kind: "fixed"; upstream: string }) & { websocket?: boolean };

/** Where frame lives: its prefix and the OAuth protected resource metadata (root and path-inserted). */
export const FRAME_PREFIXES = ["/frame/", "/.well-known/oauth-protected-resource"] as const;

export class Router {
  private readonly table: Array<{ prefix: string; exact: string; route: Route }>;

  /** `websocket`: the routes whose requests may upgrade to WebSocket (the frame pair with `frameWebsocket`). */
  constructor(
    routes: ReadonlyArray<{ prefix: string; upstream: string; websocket?: boolean }>,
    frameWebsocket = false,
  ) {
    const frame: Route = frameWebsocket ? { kind: "frame", websocket: true } : { kind: "frame" };
    const entries = [
      ...FRAME_PREFIXES.map((prefix) => ({ prefix, route: frame })),
      ...routes.map((r) => ({
        prefix: r.prefix,
        route: (r.websocket
          ? { kind: "fixed", upstream: r.upstream, websocket: true }
          : { kind: "fixed", upstream: r.upstream }) as Route,
      })),
    ];
    this.table = entries
      .map(({ prefix, route }) => ({
        // "/frame/" also answers "/frame"; "/blueprint" also answers "/blueprint/..."
        prefix: prefix.endsWith("/") ? prefix : `${prefix}/`,
        exact: prefix.endsWith("/") && prefix.length > 1 ? prefix.slice(0, -1) : prefix,
        route,
      }))
      .sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** The route for an already normalised path (no query), or undefined for 404. */
  match(path: string): Route | undefined {
    const table = this.table;
    for (let i = 0; i < table.length; i++) {
      const entry = table[i]!; // indexed: for-of cost ~40% more here, per request
      if (path === entry.exact || path.startsWith(entry.prefix)) return entry.route;
    }
    return undefined;
  }
}
