import { errorBody } from '../api-schemas.ts';

/** The error responses a route documents in openapi.json; every one has the same body. */
export const errorResponses = (...statuses: number[]): Record<number, typeof errorBody> =>
  Object.fromEntries([400, 401, ...statuses].map((s) => [s, errorBody]));
