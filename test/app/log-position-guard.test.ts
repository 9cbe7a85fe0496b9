import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startControlPlane } from '../../src/app/control-plane.ts';
import { checkLogPositions, EventLogBehindReadModel } from '../../src/app/log-position-guard.ts';
import { loadConfig } from '../../src/config/config.ts';
import { captureLogger } from '../support/silent-logger.ts';

const consumer = (deliveredStreamSeq: number) => ({ name: 'pressluft-saga', state: { deliveredStreamSeq, ackFloorStreamSeq: deliveredStreamSeq } });

describe('the start-up check of log positions', () => {
  it('passes when the read model and the consumer are at or behind the log', () => {
    expect(() => checkLogPositions({ lastPosition: 10, readModelCheckpoint: 10, consumers: [consumer(10)] })).not.toThrow();
    expect(() => checkLogPositions({ lastPosition: 10, readModelCheckpoint: 3, consumers: [{ name: 'pressluft-saga', state: null }] })).not.toThrow();
    expect(() => checkLogPositions({ lastPosition: 0, readModelCheckpoint: 0, consumers: [] })).not.toThrow();
  });

  it('refuses a read model ahead of the log, naming both numbers', () => {
    const e = (() => {
      try {
        checkLogPositions({ lastPosition: 7, readModelCheckpoint: 9, consumers: [consumer(7)] });
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(EventLogBehindReadModel);
    expect(e).toMatchObject({ code: 'EVENT_LOG_BEHIND_READ_MODEL', details: { lastPosition: 7, readModelCheckpoint: 9 } });
    expect((e as Error).message).toMatch(/ends at position 7.*checkpoint is 9.*docs\/operations\.md/);
  });

  it('refuses a saga consumer delivered beyond the log', () => {
    expect(() => checkLogPositions({ lastPosition: 7, readModelCheckpoint: 7, consumers: [consumer(8)] })).toThrow(/consumer pressluft-saga was delivered up to 8/);
  });

  it('refuses an empty stream under a non-empty read model', () => {
    expect(() => checkLogPositions({ lastPosition: 0, readModelCheckpoint: 1, consumers: [] })).toThrow(EventLogBehindReadModel);
  });
});

describe('a control plane on a log that moved backwards', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('refuses to start with EVENT_LOG_BEHIND_READ_MODEL after the embedded store was lost', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pressluft-guard-'));
    dirs.push(dir);
    const config = loadConfig({ PRESSLUFT_DATA_DIR: dir, PRESSLUFT_PORT: '0', PRESSLUFT_ROLE: 'api', PRESSLUFT_API_TOKEN: 'guard-test-token-0123456789' });
    const { logger } = captureLogger('warn');
    const cp = await startControlPlane(config, { logger });
    try {
      const res = await fetch(`${cp.url}/v1/nodes`, {
        method: 'POST',
        headers: { authorization: 'Bearer guard-test-token-0123456789', 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'guard-node', serverType: 'cx22', location: 'fsn1', sshPort: 2222 }),
      });
      expect(res.status).toBe(202);
      const { position } = (await res.json()) as { position: number };
      expect(await cp.projector.waitFor(position, 10_000)).toBe(true);
      expect(cp.projector.checkpoint).toBe(position);
    } finally {
      await cp.stop();
    }
    // The log is lost (a second server on the store, a wiped disk); the read model survives.
    await rm(join(dir, 'nats', 'jetstream'), { recursive: true, force: true });
    await expect(startControlPlane(config, { logger })).rejects.toMatchObject({ code: 'EVENT_LOG_BEHIND_READ_MODEL', details: { lastPosition: 0, readModelCheckpoint: 1 } });
    // The refused start left no server behind: a fresh start on an intact log would not find the store in use.
    const { serversUsingConfig } = await import('../../src/eventstore/nats-stale-server.ts');
    await expect.poll(() => serversUsingConfig(join(dir, 'nats', 'nats-server.conf')), { timeout: 15_000 }).toEqual([]);
  });
});
