/**
 * A postgres:// URL as the appliance reads one (database.url, `backup restore --to-database`):
 * one parser, one set of defaults. A password in it is reported, never used: passwords live in files.
 */

export interface PostgresUrl {
  host: string;
  port: number;
  user: string;
  /** Empty when the URL names none. */
  database: string;
  hasPassword: boolean;
}

/** The parts of a postgres:// (or postgresql://) URL; undefined when `text` is not one. */
export function parsePostgresUrl(text: string): PostgresUrl | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (!/^postgres(ql)?:$/.test(url.protocol)) return undefined;
  return {
    host: decodeURIComponent(url.hostname) || "127.0.0.1",
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username) || "postgres",
    database: url.pathname.replace(/^\//, ""),
    hasPassword: url.password !== "",
  };
}
