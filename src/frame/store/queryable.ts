import type postgres from "postgres";

/** Anything that runs tagged-template queries: a pool or a transaction. */
export type Queryable = postgres.Sql | postgres.TransactionSql;
export type Tx = postgres.TransactionSql;
