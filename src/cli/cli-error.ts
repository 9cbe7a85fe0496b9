/** A CLI failure with the stable code it prints; usage errors exit 2, everything else 1. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode = 1,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string, usage: string): CliError => new CliError('usage', `${message}\n${usage}`, 2);
