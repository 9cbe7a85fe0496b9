import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { decodeDecision, EventDecodeError } from '../../events/event-codec.ts';
import { redactStoredText } from '../../projections/stored-text-redaction.ts';
import type { ApiDeps } from '../api-deps.ts';
import { notFound } from '../api-error.ts';
import { eventParams, storedMessage, type StoredMessageView } from '../api-schemas.ts';
import { redactedRawText, toHistoryEntry } from '../history-entry.ts';
import { errorResponses } from './error-responses.ts';

/** Operator reads of the log by position: what `pressluft events show` prints. */
export const eventRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/v1/events/:position',
      {
        schema: {
          tags: ['audit'],
          summary: 'One stored message by position: its decoded events, or its redacted text when it does not decode',
          params: eventParams,
          response: { 200: storedMessage, ...errorResponses(404) },
        },
      },
      async (req): Promise<StoredMessageView> => {
        const { position } = req.params;
        const m = await deps.store.getMessage(position);
        if (!m) throw notFound(`a message at position ${position}`);
        const headers = Object.fromEntries(Object.entries(m.headers).map(([k, vs]) => [k, vs.map(redactStoredText)]));
        const base = { position: m.seq, subject: m.subject, nodeId: deps.store.streamIdOf(m.subject), storedAt: m.storedAt, headers };
        try {
          const decision = decodeDecision(m.subject, m.seq, m.data);
          return { ...base, decodes: true, events: decision.events.map((e) => toHistoryEntry({ ...e, position: m.seq })), invalid: null };
        } catch (e) {
          if (!(e instanceof EventDecodeError)) throw e;
          return { ...base, decodes: false, events: null, invalid: { reason: redactStoredText(e.message), ...redactedRawText(m.data) } };
        }
      },
    );
  };
