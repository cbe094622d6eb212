import { AppError, EXIT } from "../../lib/errors.ts";

/** A key is missing, wrong or does not open what it should. Exit 5 (authentication or key error). */
export class KeyError extends AppError {
  override readonly exitCode = EXIT.auth;
}
