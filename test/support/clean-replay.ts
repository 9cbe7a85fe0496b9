import { join } from 'node:path';
import { expect } from 'vitest';
import type { EventStore } from '../../src/eventstore/event-store.ts';
import type { Logger } from '../../src/logging/logger.ts';
import { Projector } from '../../src/projections/projector.ts';
import { ReadModelQueries } from '../../src/projections/read-model-queries.ts';

/** The read model a fresh projector builds from the whole log: what any other read model must equal. */
export const cleanReplay = async (store: EventStore, o: { dir: string; name: string; logger: Logger }) => {
  const p = new Projector(store, { dbPath: join(o.dir, `${o.name}.db`), logger: o.logger });
  p.start();
  expect(await p.waitFor(await store.lastPosition(), 20_000)).toBe(true);
  await p.stop();
  const dump = new ReadModelQueries(p.db).dump();
  p.close();
  return dump;
};
