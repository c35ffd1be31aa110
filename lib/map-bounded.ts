import { isCancellation } from '@temporalio/workflow';

/**
 * Promise.all with at most `limit` in flight; results keep the input order. Deterministic, so the
 * workflows fan out with it too. With `settle`, a failure stops new items but waits for those in
 * flight before it is thrown (a cancelled job's writes have all ended by then).
 */
export async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>, { settle = false } = {}): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && !failure) {
      const index = next++;
      if (!settle) {
        results[index] = await fn(items[index]!, index);
        continue;
      }
      try {
        results[index] = await fn(items[index]!, index);
      } catch (error) {
        // A cancellation is the reason, whatever else failed while the lanes wound down.
        const first = failure as { error: unknown } | undefined;
        if (!first || (isCancellation(error) && !isCancellation(first.error))) failure = { error };
      }
    }
  });
  await Promise.all(lanes);
  if (failure) throw failure.error;
  return results;
}
