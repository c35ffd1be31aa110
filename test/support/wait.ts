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
