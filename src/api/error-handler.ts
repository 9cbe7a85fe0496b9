import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { isAppError } from '../errors/app-error.ts';
import { ApiError, fromDomainError, fromFastifyStatus } from './api-error.ts';

const validationError = (err: FastifyError): ApiError => {
  const where = err.validationContext ?? 'request';
  const issues = (err.validation ?? []).map((v) => ({ in: where, path: v.instancePath, message: v.message ?? 'invalid' }));
  return new ApiError(400, 'bad_request', `invalid ${where}`, { issues });
};

/**
 * Every error leaves as `{ error: { code, message, details? } }` with a stable code. Unexpected
 * errors become a bare 500 `internal`: the cause goes to the log, never to the caller.
 */
export const toApiError = (err: unknown): ApiError => {
  if (err instanceof ApiError) return err;
  const fe = err as FastifyError;
  if (hasZodFastifySchemaValidationErrors(err)) return validationError(fe);
  if (isAppError(err)) return fromDomainError(err) ?? new ApiError(500, 'internal', 'internal error');
  if (typeof fe?.statusCode === 'number' && fe.statusCode < 500) {
    return fromFastifyStatus(fe.statusCode, fe.message) ?? new ApiError(fe.statusCode, 'bad_request', fe.message);
  }
  return new ApiError(500, 'internal', 'internal error');
};

/** The request's own logger carries its reqId, so the cause in the log matches the caller's x-request-id. */
export const errorHandler = (err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
  const api = toApiError(err);
  if (api.status >= 500 && api.code === 'internal') req.log.error({ err, method: req.method, route: req.routeOptions.url }, 'unexpected error in API request');
  return reply.code(api.status).send(api.body());
};
