import type postgres from "postgres";

/**
 * Anything that runs tagged-template queries: a pool, sql.begin's transaction, or withEntity's
 * pipelined one on a reserved connection. One type: postgres.js gives all of them the same surface.
 */
export type Tx = postgres.ISql;
