/** Whether `promise` (one that never rejects) settles within `ms`. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The name of the first of `promises` to fulfil; rejects (AggregateError) only when all of them reject. */
export function firstFulfilled<K extends string>(promises: Record<K, Promise<unknown>>): Promise<K> {
  return Promise.any(Object.entries<Promise<unknown>>(promises).map(([name, promise]) => promise.then(() => name as K)));
}
