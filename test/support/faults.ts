import type { Activities } from '../../activities/registry';

/**
 * A fault injected into the fetch stage (not a test double of Temporal or Elasticsearch): a send whose
 * metadata says `test: "slow"` waits there `ms` before fetching, so a request meets its job still running.
 */
export function slowFetch(ms: number): (activities: Activities) => Activities {
  return (activities) => ({
    ...activities,
    fetchSource: async (input) => {
      if (input.request.metadata?.test === 'slow') await new Promise((resolve) => setTimeout(resolve, ms));
      return activities.fetchSource(input);
    },
  });
}
