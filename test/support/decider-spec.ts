import { expect } from 'vitest';
import { decide } from '../../src/commands/node-decider.ts';
import type { NodeCommand } from '../../src/commands/node-commands.ts';
import type { NodeEvent } from '../../src/events/node-events.ts';
import { foldNode } from '../../src/events/node-state.ts';

const AT = '2026-11-26T12:00:00.000Z';

/** Given/When/Then over the pure decider, in the style of Emmett's DeciderSpecification. */
export const given = (history: NodeEvent[]) => ({
  when: (cmd: NodeCommand) => {
    const run = () => decide(cmd, foldNode(history.map((event) => ({ event, at: AT }))));
    return {
      then: (expected: NodeEvent[]) => expect(run()).toEqual(expected),
      thenNothing: () => expect(run()).toEqual([]),
      thenThrows: (errorType: abstract new (...args: never[]) => Error, code?: string) => {
        expect(run).toThrow(errorType);
        if (code) expect(run).toThrow(expect.objectContaining({ code }) as unknown as Error);
      },
    };
  },
});
