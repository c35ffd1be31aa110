import { ApplicationFailure } from '@temporalio/common';
import type { Activities } from '../../activities/registry';
import type { IngestRequest } from '../../lib/domain/ingest';

/** Faults injected into the pipeline's stages (not test doubles of Temporal or Elasticsearch). */
type Fault = (activities: Activities) => Activities;

/**
 * A send whose metadata says `test: "slow"` waits in its fetch stage `ms` before fetching, so a
 * request meets its job still running.
 */
export function slowFetch(ms: number): Fault {
  return (activities) => ({
    ...activities,
    fetchSource: async (input) => {
      if (input.request.metadata?.test === 'slow') await new Promise((resolve) => setTimeout(resolve, ms));
      return activities.fetchSource(input);
    },
  });
}

/**
 * For a request `marked` says so, the extractor refuses the second batch (batch 1) for good, as a
 * model refuses content it cannot take: once per source, so a later job of it (a retry) extracts
 * everything.
 */
export function refuseSecondBatchOnce(marked: (request: IngestRequest) => boolean): Fault {
  const refused = new Set<string>();
  return (activities) => ({
    ...activities,
    extractMemories: async (input, parsed, chunked, range) => {
      if (marked(input.request) && range.batch === 1 && !refused.has(input.sourceId)) {
        refused.add(input.sourceId);
        throw ApplicationFailure.nonRetryable('the extractor refused this batch', 'injected');
      }
      return activities.extractMemories(input, parsed, chunked, range);
    },
  });
}

/**
 * Every call of one activity waits until `release()`, counted in `holding`: a backlog made to order
 * (slots held by work that does not finish), to show what must not queue behind it.
 */
export function holdActivity(name: keyof Activities): { wrap: Fault; holding: () => number; release: () => void } {
  let held = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const wrap: Fault = (activities) => {
    const activity = activities[name] as (...args: unknown[]) => Promise<unknown>;
    const holding = async (...args: unknown[]) => {
      held += 1;
      await released;
      return activity(...args);
    };
    return { ...activities, [name]: holding };
  };
  return { wrap, holding: () => held, release };
}
