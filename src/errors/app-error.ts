/**
 * Every failure a user or operator can see carries a stable code from docs/error-codes.md.
 * Callers branch on `code` and `retryable`, never on the message.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;
