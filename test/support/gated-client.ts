import { Client } from '@temporalio/client';
import type { Harness } from './harness';

/**
 * A client whose starts wait for `release()`, or never reach the server once `drop()` is called; a
 * start of a workflow id in `refused` fails, as a server refusing it would.
 */
export function gatedClient(h: Harness, refused: Set<string> = new Set()) {
  let gate: Promise<void> = Promise.resolve();
  let release = () => undefined as void;
  let refusals = 0;
  const client = new Client({
    connection: h.temporal.connection,
    namespace: h.config.TEMPORAL_NAMESPACE,
    interceptors: {
      workflow: [
        {
          startWithDetails: async (input, next) => {
            await gate;
            if (refused.has(input.options.workflowId)) {
              refusals += 1;
              throw new Error('refused by the test');
            }
            return next(input);
          },
        },
      ],
    },
  });
  return {
    client,
    /** Starts refused so far. */
    refusals: () => refusals,
    hold() {
      gate = new Promise((resolve) => (release = resolve));
    },
    release: () => release(),
    /** Like a process that stops before the server has the start: it never arrives. */
    drop() {
      gate = new Promise(() => undefined);
    },
  };
}
