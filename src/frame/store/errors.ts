/**
 * Expected failures of the data store, made from their reason (lower_snake_case, which the tool
 * layer passes on as the ToolError's, and so to the audit row); `code` is its UPPER_SNAKE_CASE.
 * Messages never hold a stored value (values may be PII).
 */
import { ReasonedError } from "../../lib/errors.ts";

export type DataErrorReason =
  | "invalid_input"
  | "unknown_collection"
  | "unknown_entity"
  | "not_found"
  | "version_conflict"
  | "too_large"
  /** A stored row that does not decode (changed outside frame): reported for that row only. */
  | "unreadable"
  /** A write's audit row could not be written, so the write was rolled back. */
  | "not_recorded";

export class DataError extends ReasonedError {
  declare readonly code: Uppercase<DataErrorReason>;
  constructor(
    override readonly reason: DataErrorReason,
    message: string,
    hint?: string,
  ) {
    super(reason, message, hint);
  }
}
