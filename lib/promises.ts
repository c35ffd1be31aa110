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

/**
 * `promise`'s outcome, or, once `ms` have passed without one, what `late` answers (or throws). The
 * promise goes on; a rejection after the deadline is left handled.
 */
export async function within<T>(promise: Promise<T>, ms: number, late: () => T | Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = Symbol('late');
  try {
    const outcome = await Promise.race([promise, new Promise<typeof expired>((resolve) => (timer = setTimeout(resolve, ms, expired)))]);
    return outcome === expired ? await late() : (outcome as T);
  } finally {
    clearTimeout(timer);
  }
}
