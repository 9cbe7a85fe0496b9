import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from './api-error.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Checks `Authorization: Bearer <token>` in constant time. Both sides are hashed first, so
 * neither the comparison nor an early length check leaks how much of the token matched.
 */
export const bearerChecker = (token: string): ((header: string | undefined) => void) => {
  const want = digest(token);
  return (header) => {
    const m = header ? /^Bearer ([\x21-\x7e]+)$/.exec(header) : null;
    if (!m?.[1]) throw new ApiError(401, 'unauthorized', 'missing or malformed Authorization: Bearer <token> header');
    if (!timingSafeEqual(digest(m[1]), want)) throw new ApiError(401, 'unauthorized', 'invalid API token');
  };
};
