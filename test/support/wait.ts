/**
 * Polls `probe` until it answers something other than undefined, and returns that; fails naming
 * `what` after `timeoutMs`. A probe that throws fails the wait at once, unless `ignoreErrors` (a
 * server still starting refuses connections), when the throw counts as "not yet".
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 60_000, intervalMs = 300, ignoreErrors = false }: { timeoutMs?: number; intervalMs?: number; ignoreErrors?: boolean } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await (ignoreErrors ? probe().catch(() => undefined) : probe());
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * `promise`, or after `timeoutMs` a failure naming `what` with what `explain` then reads (the state of
 * whatever should have made it settle): a wait that hangs says where, rather than ending in the test's
 * own timeout.
 */
export async function within<T>(promise: Promise<T>, what: string, explain: () => Promise<unknown>, timeoutMs = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      explain().then(
        (state) => reject(new Error(`timed out waiting for ${what}; meanwhile: ${JSON.stringify(state)}`)),
        (error: Error) => reject(new Error(`timed out waiting for ${what}; reading why failed: ${error.message}`)),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
