/**
 * Expected failures of the data store. `code` is stable and lower_snake_case so the tool layer can
 * pass it on as the ToolError code; messages never hold a stored value (values may be PII).
 */
import { AppError } from "../../lib/errors.ts";

export type DataErrorCode =
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

export class DataError extends AppError {
  constructor(
    override readonly code: DataErrorCode,
    message: string,
    hint?: string,
  ) {
    super(code, message, hint);
  }
}
