/** Where a Postgres database is and how to log in to it; connect.ts and the embedded cluster both speak it. */
export interface DatabaseTarget {
  /** Host name, or the directory of a Unix socket. */
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
  /** A pgpass file for libpq tools (pg_dump), so no password goes on a command line. */
  passfile?: string;
}
