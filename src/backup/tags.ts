/**
 * The restic tags that say what a snapshot holds, which retention, the drills and point-in-time
 * restore find snapshots by. They live apart so that those readers need not import the writers.
 */

/** The logical dump (pg_dump -Fc). */
export const DUMP_TAG = "db";
/** The config, secrets and state snapshot beside each dump. */
export const FILES_TAG = "files";
/** A physical base backup (pg_basebackup -Ft). */
export const BASE_TAG = "base";
/** Archived WAL segments, shipped from the spool. */
export const WAL_TAG = "wal";
/** One run's snapshots share a `run:<id>` tag: a dump and the files beside it are found together. */
export const RUN_TAG_PREFIX = "run:";
