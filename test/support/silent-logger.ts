import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logging/logger.ts';

/** A pino logger whose lines are kept in memory, so tests can assert on them (and scan them for secrets). */
export const captureLogger = (level = 'debug'): { logger: Logger; lines: string[] } => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger(level, sink), lines };
};
