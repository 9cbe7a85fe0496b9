import { z } from 'zod';

/**
 * Ids become NATS subject tokens (`<prefix>.node.<nodeId>`), so they must not contain
 * `.`, `*`, `>` or whitespace. 64 chars keeps subjects short.
 */
export const TOKEN_SAFE_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const idSchema = z.string().regex(TOKEN_SAFE_ID, 'must be 1-64 characters of A-Z a-z 0-9 _ -');
