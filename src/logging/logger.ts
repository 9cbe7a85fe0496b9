import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One pino logger for the process. Known secret-bearing fields are censored by path;
 * free-text secrets (tokens inside output) are the caller's job via `redact()`.
 */
export const createLogger = (level = process.env.PRESSLUFT_LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger =>
  pino(
    {
      level,
      redact: {
        paths: [
          'token',
          '*.token',
          'authorization',
          '*.authorization',
          'headers.authorization',
          'headers.cookie',
          // Request logs allowlist their fields (request-log.ts); these catch a raw request logged elsewhere.
          'req.headers.authorization',
          'req.headers.cookie',
          'privateKey',
          '*.privateKey',
          'password',
          '*.password',
          // cloud-init user_data carries a node's private host key.
          'userData',
          '*.userData',
          'user_data',
          '*.user_data',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );

/** Replaces every occurrence of each secret with a marker. Empty secrets are ignored. */
export const redact = (text: string, secrets: readonly string[]): string =>
  secrets.filter((s) => s.length > 0).reduce((acc, s) => acc.split(s).join('[redacted]'), text);
