import type postgres from "postgres";

/** Anything that runs tagged-template queries: a pool or a transaction. */
export type Queryable = postgres.ISql;
/** Inside a transaction: sql.begin's, or withEntity's pipelined one on a reserved connection. */
export type Tx = postgres.ISql;
